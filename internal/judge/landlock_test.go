package judge

import (
	"fmt"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// With Landlock configured, a hardened container gets the launcher and a
// gVisor-bound one is told, not promised, what it does not get.
func TestLandlockNotes(t *testing.T) {
	p, j := launcherJudge(t)
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

// An exec session follows what its container got at create, not today's
// policy: a container that runs under ward-init (its seccomp filters, its
// own profile included, reach sessions only through it) keeps sending its
// sessions there after a reload that turns Landlock off, and one created
// without ward-init's mounts never gets a session under it.
func TestExecFollowsCreate(t *testing.T) {
	p, j := launcherJudge(t)
	b := load(t, "../../testdata/corpus/ctr-run/config.json")
	us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
	v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Userns: us})
	if err != nil || !v.Launched {
		t.Fatalf("create: launched %v, %v", v.Launched, err)
	}
	r := v.Report(p)
	if !r.UnderLauncher() {
		t.Fatal("the report loses that the container runs under ward-init")
	}
	// A report from before the field existed says it by its change.
	old := r
	old.Launched = false
	if !old.UnderLauncher() {
		t.Error("an older report's landlock change of process.args is not read as launched")
	}

	off, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	off.Landlock.Profile, off.Landlock.Select = policy.ProfileNone, nil
	reloaded, err := New(off, Options{Launcher: "/usr/local/bin/ward-init"})
	if err != nil {
		t.Fatal(err)
	}
	for _, launched := range []bool{true, false} {
		proc := &specs.Process{Args: []string{"sh"}, Cwd: "/"}
		if _, err := reloaded.Process(proc, &v.Decision, launched); err != nil {
			t.Fatal(err)
		}
		if got := proc.Args[0] == landlock.LauncherPath; got != launched {
			t.Errorf("container launched %v: session args %v", launched, proc.Args)
		}
	}
}

// launcherJudge is a judge of the default policy with ward-init installed.
func launcherJudge(t *testing.T) (*policy.Policy, *Judge) {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	j, err := New(p, Options{Launcher: "/usr/local/bin/ward-init"})
	if err != nil {
		t.Fatal(err)
	}
	return p, j
}
