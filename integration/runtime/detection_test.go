package runtime_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/incident"
)

// mountAttempt tries a mount and prints busybox's error (the errno's text).
const mountAttempt = `mount -t tmpfs none /mnt 2>&1; echo rc=$?`

// readAlerts reads the alert file under the state directory.
func (e *env) alerts() []alert.Alert {
	f, err := os.Open(filepath.Join(e.dir, "state", alert.FileName))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []alert.Alert
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if a, err := alert.Parse(sc.Bytes()); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// waitAlert waits up to a second for an alert of rule about container id.
func (e *env) waitAlert(id, rule string, after int) (alert.Alert, bool) {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		as := e.alerts()
		for _, a := range as[min(after, len(as)):] {
			if a.OutputFields["container.full_id"] == id && a.OutputFields["ward.rule"] == rule {
				return a, true
			}
		}
	}
	return alert.Alert{}, false
}

// supervisorOf finds the pid of container id's supervisor.
func supervisorOf(t *testing.T, id string) int {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "ward-supervise" && i+1 < len(args) && args[i+1] == id {
				return pid
			}
		}
	}
	t.Fatalf("no supervisor for %s", id)
	return 0
}

// TestSupervisorEndsWithRecord: the supervisor of a container created and
// deleted without ever starting (so no first process connected to it)
// exits once the record is gone. It used to stay: its check for the
// record compared the load's error with fs.ErrNotExist, which that error
// never wraps.
func TestSupervisorEndsWithRecord(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("never-started", []string{"true"}, nil)
	if out, err := e.wardDetached(root, "create", "--bundle", b, "ns0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	pid := supervisorOf(t, "ns0")
	if _, stderr, code := e.wardRun(root, "delete", "--force", "ns0"); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(b), ") Z ") {
			return // exited, not yet reaped by init
		}
	}
	t.Errorf("supervisor %d of deleted container ns0 still running", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

// TestDirectDetection: through ward-runtime (Docker's and Podman's door),
// a container's mount attempt, from its first process and from an exec
// session, is refused as before (EPERM) and raises a Falco-format alert
// naming the rule, ATT&CK, the container and ward's decision, within a
// second; with the container's supervisor killed, the call still fails
// (ENOSYS, never the call); with the policy asking for freeze, the
// container is frozen and an incident bundle is written.
func TestDirectDetection(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	// The first process tries a mount, then again on SIGUSR1 (after the
	// test has killed its supervisor).
	b := e.newBundle("det", []string{"sh", "-c", mountAttempt + "; trap '" + mountAttempt + "' USR1; while true; do sleep 0.05; done"}, nil)
	if out, err := e.wardDetached(root, "create", "--bundle", b, "det0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "det0")
	if _, stderr, code := e.wardRun(root, "start", "det0"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	a, ok := e.waitAlert("det0", "mount", 0)
	if !ok {
		out, _ := os.ReadFile(filepath.Join(e.dir, "detached.out"))
		t.Fatalf("no mount alert for det0's first process; container output %q, alerts %v", out, e.alerts())
	}
	dec := e.decisionFor("det0")
	f := a.OutputFields
	if a.Rule != "Mount Launched in Privileged Container" || f["ward.door"] != "runtime" || f["ward.decision.id"] != dec["id"] ||
		f["ward.response"] != "deny" || f["evt.type"] != "mount" || f["fd.name"] != "/mnt" || a.Tags[0] != "T1611" {
		t.Errorf("alert: %s %v %v (decision %v)", a.Rule, a.Tags, f, dec["id"])
	}
	var out []byte
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, _ = os.ReadFile(filepath.Join(e.dir, "detached.out")); strings.Contains(string(out), "rc=") {
			break
		}
	}
	if !strings.Contains(string(out), "permission denied") && !strings.Contains(string(out), "Operation not permitted") {
		t.Errorf("first process: %q, want EPERM as without the supervisor", out)
	}

	// An exec session hands its own listener to the same supervisor.
	n := len(e.alerts())
	stdout, stderr, code := e.wardRun(root, "exec", "det0", "sh", "-c", "unshare -U true 2>&1; echo rc=$?")
	if code != 0 || !strings.Contains(stdout, "Operation not permitted") {
		t.Errorf("exec: exit %d, %q %q", code, stdout, stderr)
	}
	if _, ok := e.waitAlert("det0", "userns", n); !ok {
		t.Errorf("no userns alert for the exec session")
	}

	// The supervisor killed mid-run: notified calls fail with ENOSYS.
	if err := unix.Kill(supervisorOf(t, "det0"), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stdout, _, _ = e.wardRun(root, "exec", "det0", "sh", "-c", "echo alive")
	if strings.Contains(stdout, "alive") {
		t.Errorf("an exec session started with no supervisor: %q", stdout)
	}
	pid := initPid(t, e, root, "det0")
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, _ = os.ReadFile(filepath.Join(e.dir, "detached.out")); strings.Count(string(out), "rc=") == 2 {
			break
		}
	}
	if second := string(out)[strings.Index(string(out), "rc=")+3:]; !strings.Contains(second, "not implemented") {
		t.Errorf("mount with the supervisor gone: %q, want ENOSYS", second)
	}
}

// initPid is the container's first process, from its OCI state.
func initPid(t *testing.T, e *env, root, id string) int {
	stdout, stderr, code := e.wardRun(root, "state", id)
	if code != 0 {
		t.Fatalf("state: %s", stderr)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Pid == 0 {
		t.Fatalf("state %q: %v", stdout, err)
	}
	return st.Pid
}

// TestDirectDetectionFreeze: a policy that answers mount with freeze
// leaves the container frozen, with an incident bundle.
func TestDirectDetectionFreeze(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	pol := filepath.Join(e.dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nextends: default\n"+
		"detection:\n  responses:\n    - {rule: mount, response: freeze}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.newBundle("frz", []string{"sh", "-c", "sleep 1; " + mountAttempt + "; sleep 300"}, nil)
	if out, err := e.wardDetached(root, "--ward-policy", pol, "create", "--bundle", b, "frz0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "frz0")
	if _, stderr, code := e.wardRun(root, "start", "frz0"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	if _, ok := e.waitAlert("frz0", "mount", 0); !ok {
		time.Sleep(2 * time.Second)
		if _, ok := e.waitAlert("frz0", "mount", 0); !ok {
			t.Fatalf("no mount alert: %v", e.alerts())
		}
	}
	store := incident.NewStore(filepath.Join(e.dir, "state"))
	var ms []incident.Manifest
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(ms) == 0; time.Sleep(50 * time.Millisecond) {
		ms, _ = store.List()
	}
	if len(ms) != 1 || ms[0].Container.ID != "frz0" || ms[0].Container.Freezer != "FROZEN" || ms[0].Trigger.Response != "freeze" {
		t.Fatalf("incidents: %+v", ms)
	}
	state, _, _ := e.wardRun(root, "state", "frz0")
	if !strings.Contains(state, `"paused"`) && !strings.Contains(state, `"status": "paused"`) {
		t.Logf("state after freeze: %s", state)
	}
}
