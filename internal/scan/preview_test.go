package scan

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/userns"
)

// TestPreviewSeccompSameVerdicts: off Linux, where ward's seccomp profile
// cannot be generated, a scan judges with profiles.SeccompPreview standing
// in (judge.Options.Preview). Run here with the stand-in forced, every
// manifest of testdata/manifests gets the same results, byte for byte in
// JSON, as with ward's generated profile: a scan on a developer's Mac
// says what the node says.
func TestPreviewSeccompSameVerdicts(t *testing.T) {
	files, err := filepath.Glob("../../testdata/manifests/*/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	p, n := captureNode(t)
	real, err := New(p, n)
	if err != nil {
		t.Fatal(err)
	}
	j, err := judge.New(p, judge.Options{UsernsPool: []userns.Range{userns.Placeholder()}, Seccomp: profiles.SeccompPreview{}})
	if err != nil {
		t.Fatal(err)
	}
	preview := &Scanner{judge: j, policy: p, node: n, backends: backend.Builtin()}
	containers := 0
	for _, f := range files {
		objs, _, err := manifest.Read([]string{f}, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want, err := real.Scan(objs)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := preview.Scan(objs)
		if err != nil {
			t.Fatalf("%s with the stand-in: %v", f, err)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			t.Errorf("%s: results differ with the stand-in\n generated: %s\n stand-in:  %s", f, wj, gj)
		}
		containers += len(want)
	}
	if containers == 0 {
		t.Fatal("no containers judged")
	}
	t.Logf("%d manifests, %d containers: the same results", len(files), containers)
}
