package bundle_test

import (
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Encode must give what encoding/json (the library runc decodes with) reads
// back to the same spec, for every spec of the corpus as written and as
// ward rewrites it (seccomp profile, Landlock launcher, masked paths...).
func TestEncodeRoundTripsThroughEncodingJSON(t *testing.T) {
	files, err := filepath.Glob("../testdata/corpus/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus specs (%v)", err)
	}
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	j, err := judge.New(p, judge.Options{Launcher: "/usr/local/bin/ward-init"})
	if err != nil {
		t.Fatal(err)
	}
	n, hardened := 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := bundle.Parse(data)
		if err != nil {
			continue // not a spec (the corpus keeps notes beside them)
		}
		check(t, f, s)
		us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
		if v, err := j.Spec(policy.Input{Spec: s, Workload: bundle.WorkloadOf(s), Userns: us}); err == nil && v.Rewritten() {
			check(t, f+" (hardened)", s)
			hardened++
		}
		n++
	}
	if n == 0 || hardened == 0 {
		t.Fatalf("%d corpus specs parsed, %d hardened: the test checked nothing", n, hardened)
	}
}

func check(t *testing.T, name string, s *specs.Spec) {
	t.Helper()
	out, err := bundle.Encode(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var viaStd specs.Spec
	if err := stdjson.Unmarshal(out, &viaStd); err != nil {
		t.Fatalf("%s: encoding/json cannot read Encode's output: %v", name, err)
	}
	want, _ := stdjson.Marshal(s)
	got, _ := stdjson.Marshal(&viaStd)
	if string(want) != string(got) {
		t.Errorf("%s: spec changed through Encode:\n got %s\nwant %s", name, got, want)
	}
	// ward's own strict reader must accept what it wrote, with the same
	// meaning (an emptied map or slice may come back nil: the same JSON).
	back, err := bundle.Parse(out)
	if err != nil {
		t.Fatalf("%s: Parse(Encode(s)): %v", name, err)
	}
	if again, _ := stdjson.Marshal(back); string(again) != string(want) {
		t.Errorf("%s: Parse(Encode(s)) differs from s:\n got %s\nwant %s", name, again, want)
	}
}

// TestRewriteOfAReusedBundle: a bundle created twice (runc run of the same
// directory again) is judged from the caller's spec both times, never from
// ward's output for the first container, and the original stays beside it;
// a caller that writes a new config.json gets that one judged and kept.
func TestRewriteOfAReusedBundle(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	write := func(args string) []byte {
		data := []byte(`{"ociVersion": "1.2.0", "process": {"cwd": "/", "args": [` + args + `]}, "root": {"path": "rootfs"}}`)
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return data
	}
	create := func(wantOrig bool, wantArg string) {
		t.Helper()
		b, err := bundle.LoadOriginal(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		if b.FromOrig != wantOrig || b.ConfigPath != cfg || b.Spec.Process.Args[0] != wantArg {
			t.Fatalf("loaded FromOrig %v path %s args %q; want FromOrig %v, %s, %s", b.FromOrig, b.ConfigPath, b.Spec.Process.Args, wantOrig, cfg, wantArg)
		}
		if _, ok := b.Spec.Annotations[bundle.RewrittenAnnotation]; ok {
			t.Fatal("the caller's spec carries ward's annotation")
		}
		b.Spec.Process.Args = append([]string{"/.ward/ward-init"}, b.Spec.Process.Args...)
		if err := bundle.WriteSpec(b); err != nil {
			t.Fatal(err)
		}
	}
	first := write(`"sh"`)
	create(false, "sh")
	create(true, "sh")
	if got, _ := os.ReadFile(cfg + bundle.OrigSuffix); string(got) != string(first) {
		t.Errorf("original after two creates:\n%s\nwant\n%s", got, first)
	}
	again, err := bundle.Load(dir, 0)
	if err != nil || again.Spec.Annotations[bundle.RewrittenAnnotation] != "config.json.orig" || len(again.Spec.Process.Args) != 2 {
		t.Fatalf("rewrite %+v, %v", again.Spec, err)
	}

	second := write(`"true"`)
	create(false, "true")
	if got, _ := os.ReadFile(cfg + bundle.OrigSuffix); string(got) != string(second) {
		t.Errorf("original after the caller's new spec: %s", got)
	}

	// The annotation alone, without an original beside it, is just a spec.
	os.Remove(cfg + bundle.OrigSuffix)
	if b, err := bundle.LoadOriginal(dir, 0); err != nil || b.FromOrig || len(b.Spec.Process.Args) != 2 {
		t.Errorf("claimed rewrite without an original: %v, %v", b, err)
	}
}
