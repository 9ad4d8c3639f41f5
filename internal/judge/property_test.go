package judge

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/policy"
)

// checkRewrite asserts the pipeline's two promises on one spec:
//   - the rewritten spec never evaluates worse than the original: no finding
//     it did not have, and no stricter action;
//   - rewriting is idempotent: a second pass changes nothing.
func checkRewrite(t *testing.T, j *Judge, data []byte) {
	t.Helper()
	s, err := bundle.Parse(data)
	if err != nil {
		return
	}
	in := policy.Input{Spec: s, Workload: bundle.WorkloadOf(s)}
	before := j.Evaluator().Evaluate(in)
	v, err := j.Spec(in)
	if err != nil {
		// Failing closed is allowed; the container does not run.
		return
	}
	if v.Action != before.Action {
		t.Fatalf("Spec decided %s, Evaluate %s", v.Action, before.Action)
	}
	if v.Action != policy.Harden {
		return
	}
	once, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	// The rewritten spec must still be one ward accepts.
	s2, err := bundle.Parse(once)
	if err != nil {
		t.Fatalf("rewritten spec does not parse: %v\n%s", err, once)
	}
	in2 := policy.Input{Spec: s2, Workload: bundle.WorkloadOf(s2)}
	after := j.Evaluator().Evaluate(in2)
	had := map[string]bool{}
	for _, f := range before.Findings {
		had[f.Check.ID] = true
	}
	for _, f := range after.Findings {
		if !had[f.Check.ID] {
			t.Fatalf("rewriting added finding %s (%s: %s)", f.Check.ID, f.Path, f.Detail)
		}
	}
	if rank(after.Action) > rank(before.Action) {
		t.Fatalf("rewriting made the action stricter: %s -> %s", before.Action, after.Action)
	}
	v2, err := j.Spec(in2)
	if err != nil {
		t.Fatalf("second rewrite failed: %v", err)
	}
	if len(v2.Changes) != 0 {
		t.Fatalf("second rewrite changed %v", v2.Changes)
	}
	twice, err := json.Marshal(s2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once, twice) {
		t.Fatal("rewriting twice differs from rewriting once")
	}
}

func rank(a policy.Action) int {
	return slices.Index([]policy.Action{policy.Harden, policy.Sandbox, policy.Reject}, a)
}

func defaultJudge(t testing.TB) *Judge {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	j, err := New(p, Options{Launcher: testLauncher})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func corpusSpecs(t testing.TB) [][]byte {
	t.Helper()
	paths, err := filepath.Glob("../../testdata/corpus/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		switch filepath.Base(p) {
		case "config.json", "sandbox.json", "container.json":
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, data)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d corpus specs", len(out))
	}
	return out
}

func TestRewriteProperties(t *testing.T) {
	j := defaultJudge(t)
	for _, data := range corpusSpecs(t) {
		checkRewrite(t, j, data)
	}
}

// FuzzPipeline runs load, evaluate and rewrite on arbitrary input: no
// panic, and the rewrite promises hold for every spec that parses.
func FuzzPipeline(f *testing.F) {
	for _, data := range corpusSpecs(f) {
		f.Add(data)
	}
	j := defaultJudge(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRewrite(t, j, data)
	})
}
