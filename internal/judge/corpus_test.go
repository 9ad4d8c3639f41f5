package judge

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// corpusCase is one directory of testdata/corpus: specs captured from real
// tools (see integration/corpus/README.md).
type corpusCase struct {
	name string
	dir  string
	meta struct {
		ContainerdRoot  string `json:"containerdRoot"`
		ContainerdState string `json:"containerdState"`
		KubeletRoot     string `json:"kubeletRoot"`
	}
}

func (c *corpusCase) cri() bool {
	_, err := os.Stat(filepath.Join(c.dir, "sandbox.json"))
	return err == nil
}

func corpus(t testing.TB) []corpusCase {
	t.Helper()
	dirs, err := filepath.Glob("../../testdata/corpus/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	var out []corpusCase
	for _, d := range dirs {
		c := corpusCase{name: filepath.Base(d), dir: d}
		data, err := os.ReadFile(filepath.Join(d, "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &c.meta); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		out = append(out, c)
	}
	return out
}

// nodePolicy is the default policy told where the capture's containerd and
// fake kubelet kept their per-pod files, as a node policy would be.
func (c *corpusCase) nodePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.meta.KubeletRoot != "" {
		p.Node.KubeletRoot = c.meta.KubeletRoot
	}
	for _, d := range []string{c.meta.ContainerdRoot, c.meta.ContainerdState} {
		if d != "" {
			p.Node.RuntimeDirs = append(slices.Clone(p.Node.RuntimeDirs), d+"/io.containerd.grpc.v1.cri/sandboxes")
		}
	}
	return p
}

func load(t testing.TB, path string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Load(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// judgeCase judges a case's main spec (with its pod's context for CRI
// cases) and returns the verdict, the sandbox's verdict (CRI only) and the
// rewritten spec. The default policy maps containers into a user
// namespace, so the case gets the placeholder block a front door would
// have allocated.
func judgeCase(t testing.TB, j *Judge, c *corpusCase) (Verdict, *Verdict, *specs.Spec) {
	return judgeCaseUserns(t, j, c, true)
}

// judgeCaseUserns is judgeCase with, when withUserns, the placeholder user
// namespace block a front door would have allocated (the sandbox's
// namespace joined by the app container).
func judgeCaseUserns(t testing.TB, j *Judge, c *corpusCase, withUserns bool) (Verdict, *Verdict, *specs.Spec) {
	t.Helper()
	us := func(join string) *policy.UsernsInput {
		if !withUserns {
			return nil
		}
		return &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Join: join, Placeholder: true}
	}
	if !c.cri() {
		b := load(t, filepath.Join(c.dir, "config.json"))
		v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Userns: us("")})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		return v, nil, b.Spec
	}
	sb := load(t, filepath.Join(c.dir, "sandbox.json"))
	sv, err := j.Spec(policy.Input{Spec: sb.Spec, Workload: sb.Workload, Userns: us("")})
	if err != nil {
		t.Fatalf("%s sandbox: %v", c.name, err)
	}
	app := load(t, filepath.Join(c.dir, "container.json"))
	if app.Workload.Kind != bundle.PodContainer || sb.Workload.Kind != bundle.Sandbox {
		t.Fatalf("%s: kinds %s/%s", c.name, sb.Workload.Kind, app.Workload.Kind)
	}
	v, err := j.Spec(policy.Input{Spec: app.Spec, Workload: app.Workload, Pod: sv.PodContext(), Userns: us("/proc/<sandbox pid>/ns/user")})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return v, &sv, app.Spec
}

// TestCorpusDecisions pins the decision for every real spec: what the
// default policy promises for each workload shape.
func TestCorpusDecisions(t *testing.T) {
	want := map[string]struct {
		action  policy.Action
		backend policy.Backend
		finding string // a finding that must be present
		// hostPath: the workload asked for a host path; in every other
		// CRI case all bind mounts are the kubelet's or containerd's own.
		hostPath bool
	}{
		"runc-spec":           {policy.Harden, policy.Runc, policy.IDSeccompUnconfined, false},
		"runc-spec-rootless":  {policy.Harden, policy.Runc, policy.IDHostNetwork, false},
		"ctr-run":             {policy.Harden, policy.Runc, policy.IDRunAsRoot, false},
		"ctr-run-privileged":  {policy.Reject, policy.Runc, policy.IDPrivileged, false},
		"cri-ordinary":        {policy.Harden, policy.Runc, policy.IDSeccompUnconfined, false},
		"cri-nonroot-seccomp": {policy.Harden, policy.Runc, policy.IDHostUser, false},
		"cri-privileged":      {policy.Reject, policy.Runc, policy.IDPrivileged, false},
		"cri-hostpid":         {policy.Reject, policy.Runc, policy.IDHostPID, false},
		"cri-hostipc":         {policy.Reject, policy.Runc, policy.IDHostIPC, true},
		"cri-hostnetwork":     {policy.Harden, policy.Runc, policy.IDHostNetwork, false},
		"cri-docker-sock":     {policy.Reject, policy.Runc, policy.IDContainerSocketMount, true},
		"cri-hostpath-root":   {policy.Reject, policy.Runc, policy.IDSensitiveHostPathWritable, true},
		"cri-cap-sys-admin":   {policy.Sandbox, policy.GVisor, policy.IDCapSysAdmin, false},
		"cri-unsafe-sysctl":   {policy.Reject, policy.Runc, policy.IDUnsafeSysctl, false},
		"cri-untrusted":       {policy.Sandbox, policy.GVisor, policy.IDUntrustedWorkload, false},
		// Pods with mixed decisions: container.json is the app, hardened;
		// the other container (container-NAME.json) is judged in
		// internal/scan's agreement tests.
		"cri-mixed-init-gvisor":    {policy.Harden, policy.Runc, policy.IDSeccompUnconfined, false},
		"cri-mixed-sidecar-reject": {policy.Harden, policy.Runc, policy.IDSeccompUnconfined, false},
	}
	cases := corpus(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, ok := want[c.name]
			if !ok {
				t.Fatalf("corpus case %s has no expected decision here", c.name)
			}
			j, err := New(c.nodePolicy(t), Options{Launcher: testLauncher})
			if err != nil {
				t.Fatal(err)
			}
			v, _, _ := judgeCase(t, j, &c)
			if v.Action != w.action || v.Backend != w.backend {
				t.Errorf("decision %s/%s (rule %s), want %s/%s", v.Action, v.Backend, v.Rule, w.action, w.backend)
			}
			if !slices.ContainsFunc(v.Findings, func(f policy.Finding) bool { return f.Check.ID == w.finding }) {
				t.Errorf("finding %s missing from %v", w.finding, findingIDs(v.Findings))
			}
			if c.cri() && !w.hostPath && slices.ContainsFunc(v.Findings, func(f policy.Finding) bool { return f.Check.ID == policy.IDHostPathMount }) {
				t.Errorf("a runtime- or kubelet-managed mount was taken for a hostPath: %v", v.Findings)
			}
		})
	}
	if len(cases) != len(want) {
		t.Errorf("corpus has %d cases, expectations %d", len(cases), len(want))
	}
}

func findingIDs(fs []policy.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Check.ID)
	}
	return out
}

// TestCorpusGolden compares each case's report and rewritten spec with
// testdata/golden/<case>.json (go test ./internal/judge -update rewrites them).
func TestCorpusGolden(t *testing.T) { corpusGolden(t, "golden", false) }

// TestCorpusGoldenUserns is the same under a policy with the userns step
// on, in testdata/golden-userns.
func TestCorpusGoldenUserns(t *testing.T) { corpusGolden(t, "golden-userns", true) }

func corpusGolden(t *testing.T, dir string, withUserns bool) {
	for _, c := range corpus(t) {
		t.Run(c.name, func(t *testing.T) {
			p := c.nodePolicy(t)
			p.Userns.Enabled = policy.Bool(withUserns)
			j, err := New(p, Options{Launcher: testLauncher, UsernsPool: []userns.Range{userns.Placeholder()}})
			if err != nil {
				t.Fatal(err)
			}
			v, sv, spec := judgeCaseUserns(t, j, &c, withUserns)
			doc := map[string]any{"report": v.Report(p), "spec": summarizeSeccomp(t, spec)}
			if sv != nil {
				doc["sandboxReport"] = sv.Report(p)
			}
			got, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", dir, c.name+".json"), append(got, '\n'))
		})
	}
}

// checkGolden compares got with the golden file, or with -update writes it.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/judge -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test ./internal/judge -update and review the diff", golden)
	}
}

// summarizeSeccomp replaces the injected profile's rules by their count: the
// profile itself has its own golden file in profiles/testdata.
func summarizeSeccomp(t testing.TB, s *specs.Spec) map[string]any {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if l, ok := m["linux"].(map[string]any); ok {
		if sc, ok := l["seccomp"].(map[string]any); ok {
			rules, _ := sc["syscalls"].([]any)
			sc["syscalls"] = len(rules)
		}
	}
	return m
}

// testLauncher is where `ward install` puts ward-init; the tests judge as a
// node with ward installed would.
const testLauncher = "/usr/local/bin/ward-init"

// TestPreviewSeccompCorpus: a judge that previews verdicts where ward's
// seccomp profile cannot be generated (off Linux: Options.Preview and
// profiles.SeccompPreview) decides every captured spec as the node does,
// with the same findings and the same changes, the seccomp change saying
// it was previewed with a stand-in.
func TestPreviewSeccompCorpus(t *testing.T) {
	standins := 0
	for _, c := range corpus(t) {
		t.Run(c.name, func(t *testing.T) {
			p := c.nodePolicy(t)
			real, err := New(p, Options{Launcher: testLauncher})
			if err != nil {
				t.Fatal(err)
			}
			preview, err := New(p, Options{Launcher: testLauncher, Seccomp: profiles.SeccompPreview{}})
			if err != nil {
				t.Fatal(err)
			}
			want, _, _ := judgeCase(t, real, &c)
			got, _, _ := judgeCase(t, preview, &c)
			if got.Action != want.Action || got.Backend != want.Backend || got.Reason != want.Reason ||
				!slices.Equal(findingIDs(got.Findings), findingIDs(want.Findings)) || !slices.Equal(got.Notes, want.Notes) {
				t.Fatalf("stand-in: %s/%s %v %v; generated: %s/%s %v %v", got.Action, got.Backend, findingIDs(got.Findings), got.Notes,
					want.Action, want.Backend, findingIDs(want.Findings), want.Notes)
			}
			if len(got.Changes) != len(want.Changes) {
				t.Fatalf("%d changes with the stand-in, %d generated", len(got.Changes), len(want.Changes))
			}
			for i, w := range want.Changes {
				g := got.Changes[i]
				if w.Step == policy.StepSeccomp && w.Path == "linux.seccomp" {
					w.Detail += "; " + profiles.SeccompPreview{}.Standin()
					standins++
				}
				if g != w {
					t.Errorf("change %d: stand-in %+v, generated %+v", i, g, w)
				}
			}
		})
	}
	if standins == 0 {
		t.Error("no captured spec got ward's profile: the stand-in was never compared")
	}
}
