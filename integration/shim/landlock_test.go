package shim_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// dropAndRun copies a binary into /tmp and runs it, as a dropped miner
// would, and prints its exit status: busybox sh gives 126 when execve
// fails with EACCES.
const dropAndRun = `cp /bin/busybox /tmp/busybox && /tmp/busybox echo ran; echo rc=$?`

// TestLandlockPod: in a CRI pod through containerd-shim-ward-v2 opted into
// write-xor-execute (annotation ward.dev/landlock: wx), a binary written
// to /tmp cannot run, from the container's own process or from a crictl
// exec session; the same pod on plain runc runs it, and so does a pod
// under ward's default profile. A pod sent to gVisor is logged as not
// under Landlock.
func TestLandlockPod(t *testing.T) {
	w := startWard(t)
	cmd := []string{"sh", "-c", dropAndRun + "; exec sleep 3600"}

	r, err := w.RunPod(harness.Pod{Name: "ll-runc", Handler: "runc", Command: cmd})
	if err != nil {
		t.Fatalf("runc pod: %v", err)
	}
	if out, err := w.Exec(r.ContainerID, "sh", "-c", dropAndRun); err != nil || !strings.Contains(out, "ran\nrc=0") {
		t.Fatalf("plain runc should run the dropped binary: %q %v", out, err)
	}

	d, err := w.RunPod(harness.Pod{Name: "ll-default", Handler: "ward", Command: cmd})
	if err != nil {
		t.Fatalf("ward pod, default profile: %v\n%s", err, w.LogTail(40))
	}
	if out, err := w.Exec(d.ContainerID, "sh", "-c", dropAndRun+"; kill -0 1 && echo signalled"); err != nil || !strings.Contains(out, "ran\nrc=0") || !strings.Contains(out, "signalled") {
		t.Errorf("default profile, crictl exec: %q %v; want the dropped binary run and pid 1 signalled", out, err)
	}

	p, err := w.RunPod(harness.Pod{Name: "ll-ward", Handler: "ward", Command: cmd, Annotations: map[string]string{"ward.dev/landlock": "wx"}})
	if err != nil {
		t.Fatalf("ward pod: %v\n%s", err, w.LogTail(40))
	}
	// The container's own process: its log shows the refusal.
	var logs, stderr string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if logs, stderr, _ = w.Crictl("logs", p.ContainerID); strings.Contains(logs, "rc=") {
			break
		}
	}
	if !strings.Contains(logs, "rc=126") || !strings.Contains(logs+stderr, "Permission denied") {
		t.Errorf("container process: logs %q %q, want rc=126 and Permission denied", logs, stderr)
	}
	// An exec session gets the container's ruleset.
	if out, err := w.Exec(p.ContainerID, "sh", "-c", dropAndRun); err != nil || !strings.Contains(out, "rc=126") {
		t.Errorf("crictl exec: %q %v, want rc=126", out, err)
	}

	g, err := w.RunPod(harness.Pod{Name: "ll-gvisor", Handler: "ward", Annotations: map[string]string{"ward.dev/untrusted": "true"}})
	if err != nil {
		t.Fatalf("gVisor pod: %v\n%s", err, w.LogTail(40))
	}
	found := false
	for _, e := range decisions(t, w.StateDir) {
		if e.ContainerID == g.ContainerID && e.Event == "create" {
			found = true
			if e.Backend != "gvisor" || !slices.ContainsFunc(e.Notes, func(n string) bool { return strings.HasPrefix(n, "Landlock not enforced (gvisor)") }) {
				t.Errorf("gVisor container's decision: backend %q, notes %q", e.Backend, e.Notes)
			}
		}
	}
	if !found {
		t.Errorf("no create decision for the gVisor container %s", g.ContainerID)
	}
	for _, id := range []string{r.SandboxID, p.SandboxID, g.SandboxID} {
		if err := w.RemovePod(id); err != nil {
			t.Errorf("removing pod %s: %v", id, err)
		}
	}
}
