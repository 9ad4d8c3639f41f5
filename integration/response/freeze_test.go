package response_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/incident"
)

// forker keeps three processes: the shell and two sleeps.
const forker = "sleep 300 & sleep 300 & wait"

// TestFreezeCollectKill freezes a real container (runc sees it paused),
// collects an incident bundle from it while frozen, thaws it, then kills it
// with a bystander container left untouched.
func TestFreezeCollectKill(t *testing.T) {
	e := newEnv(t)
	e.run("victim", forker)
	e.run("bystander", forker)
	h, err := freezer.Host()
	if err != nil {
		t.Fatal(err)
	}
	locate := func(id string) (*freezer.Cgroup, ociState) {
		st := e.stateOf(id)
		cg, err := freezer.Locate(h, id, st.Pid, cgroupsPath(t, st.Bundle))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, id+"'s three processes", func() bool { p, _ := cg.Pids(); return len(p) == 3 })
		return cg, st
	}
	victim, vst := locate("victim")
	bystander, _ := locate("bystander")
	if victim.Path == bystander.Path {
		t.Fatalf("both containers in %s", victim.Path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := victim.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	// The runtime reads the same freezer: a frozen container is paused.
	if st := e.stateOf("victim"); st.Status != "paused" {
		t.Errorf("runc says the frozen victim is %s", st.Status)
	}
	if st := e.stateOf("bystander"); st.Status != "running" {
		t.Errorf("bystander is %s", st.Status)
	}

	store := incident.NewStore(e.state)
	m, err := store.Collect(ctx, incident.Input{
		ContainerID: "victim", Bundle: vst.Bundle, Pid: vst.Pid, Cgroup: victim, DecisionLog: e.decision,
		Trigger: incident.Trigger{Rule: "test", Response: "freeze"},
		Alerts:  []json.RawMessage{json.RawMessage(`{"rule":"test"}`)},
	})
	if terr := victim.Thaw(ctx); terr != nil {
		t.Fatal(terr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if m.Container.Freezer != freezer.Frozen || m.Container.Processes != 3 || len(m.Notes) != 0 {
		t.Errorf("manifest: %+v", m)
	}
	if err := store.Verify(m.ID); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(store.Dir, m.ID)
	for file, want := range map[string]string{
		"spec.json":      `"ward.dev/rewritten-from"`, // ward's rewrite
		"spec.orig.json": `"sleep 300 `,
		"decision.json":  `"containerID":"victim"`,
		"processes.json": `"sleep"`,
		"mountinfo.txt":  " /proc ",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v, want it to contain %s", file, err, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "spec.orig.json")); strings.Contains(string(b), "ward.dev/rewritten-from") {
		t.Error("spec.orig.json is ward's rewrite, not the original")
	}
	var procs []incident.Process
	b, _ := os.ReadFile(filepath.Join(dir, "processes.json"))
	json.Unmarshal(b, &procs)
	for _, p := range procs {
		// What the container sees: PID 1 and its children, seccomp on.
		if p.Pid == vst.Pid && (len(p.NSpid) != 2 || p.NSpid[1] != 1 || len(p.Children) != 2 || p.Seccomp != "2") {
			t.Errorf("init process %+v", p)
		}
	}
	// `ward incident list` on the node finds it.
	cmd := exec.Command(harness.WardBin(t, "ward"), "incident", "list")
	cmd.Env = e.environ()
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), m.ID) {
		t.Errorf("ward incident list: %v\n%s", err, out)
	}

	before, _ := bystander.Pids()
	k, err := victim.Kill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Frozen || len(k.Pids) != 3 {
		t.Errorf("kill: %+v", k)
	}
	waitFor(t, "runc to see the victim stopped", func() bool { return e.stateOf("victim").Status == "stopped" })
	if st := e.stateOf("bystander"); st.Status != "running" {
		t.Errorf("bystander is %s after the victim's kill", st.Status)
	}
	if after, _ := bystander.Pids(); len(after) != len(before) {
		t.Errorf("bystander's processes %v became %v", before, after)
	}
}
