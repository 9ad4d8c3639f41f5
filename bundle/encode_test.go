package bundle_test

import (
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/judge"
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
	n := 0
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
		if _, err := j.Spec(policy.Input{Spec: s, Workload: bundle.WorkloadOf(s)}); err == nil {
			check(t, f+" (hardened)", s)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no spec of the corpus parsed")
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
	back, err := bundle.Parse(out)
	if err != nil {
		t.Fatalf("%s: Parse(Encode(s)): %v", name, err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("%s: Parse(Encode(s)) differs from s", name)
	}
}
