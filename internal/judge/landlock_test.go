package judge

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// With Landlock configured, a hardened container gets the launcher and a
// gVisor-bound one is told, not promised, what it does not get.
func TestLandlockNotes(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	j, err := New(p, Options{Launcher: "/usr/local/bin/ward-init"})
	if err != nil {
		t.Fatal(err)
	}
	judge := func(path string, pod *policy.PodContext) Verdict {
		b := load(t, path)
		us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
		v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Pod: pod, Userns: us})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	gv := judge("../../testdata/corpus/cri-cap-sys-admin/container.json", nil)
	if gv.Action != policy.Sandbox || !slices.Contains(gv.Notes, fmt.Sprintf(NoteLandlockSandbox, policy.GVisor)) {
		t.Errorf("gVisor verdict %s, notes %v", gv.Action, gv.Notes)
	}
	if r := gv.Report(p); !slices.Contains(r.Notes, fmt.Sprintf(NoteLandlockSandbox, policy.GVisor)) {
		t.Error("the report drops the note")
	}
	hv := judge("../../testdata/corpus/ctr-run/config.json", nil)
	if hv.Action != policy.Harden || len(hv.Notes) != 0 {
		t.Fatalf("hardened verdict %s, notes %v", hv.Action, hv.Notes)
	}
	if !slices.ContainsFunc(hv.Changes, func(c harden.Change) bool { return c.Step == policy.StepLandlock }) {
		t.Errorf("no landlock change in %v", hv.Changes)
	}
	// Without a launcher, hardened verdicts say Landlock is not in force.
	bare, err := New(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := load(t, "../../testdata/corpus/ctr-run/config.json")
	us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
	v, err := bare.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Userns: us})
	if err != nil || !slices.Contains(v.Notes, NoteNoLauncher) {
		t.Errorf("no-launcher verdict notes %v, %v", v.Notes, err)
	}
}
