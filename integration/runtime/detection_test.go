package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/incident"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// mountAttempt tries a mount and prints busybox's error (the errno's text).
const mountAttempt = `mount -t tmpfs none /mnt 2>&1; echo rc=$?`

// alerts reads the alert file under the state directory.
func (e *env) alerts() []alert.Alert {
	return harness.Alerts(e.t, filepath.Join(e.dir, "state", alert.FileName))
}

// waitAlert waits for an alert of rule about container id among the
// alerts after the first after, and logs how long it took (the issue asks
// for a second; this machine's load makes that a measurement, not an
// assertion).
func (e *env) waitAlert(id, rule string, after int) (alert.Alert, bool) {
	t0 := time.Now()
	for deadline := t0.Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		as := e.alerts()
		for _, a := range as[min(after, len(as)):] {
			if a.OutputFields["container.full_id"] == id && a.OutputFields["ward.rule"] == rule {
				e.t.Logf("%s alert for %.12s: %s after the test looked", rule, id, time.Since(t0).Round(time.Millisecond))
				return a, true
			}
		}
		if time.Now().After(deadline) {
			return alert.Alert{}, false
		}
	}
}

// nodeEntry is a container in a node supervisor's list
// (/run/ward-supervisor/node-*.d, internal/wardruntime/node.go).
type nodeEntry struct {
	ID     string `json:"id"`
	Socket string `json:"socket"`
	PID    int    `json:"pid"`
}

// servedBy lists the live node supervisors serving container id, with the
// container's socket.
func servedBy(id string) []nodeEntry {
	var out []nodeEntry
	files, _ := filepath.Glob("/run/ward-supervisor/node-*.d/*.json")
	for _, f := range files {
		var e nodeEntry
		b, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(b, &e) != nil || e.ID != id {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(e.PID) + "/cmdline")
		if slices.Contains(strings.Split(string(cmd), "\x00"), "ward-supervise-node") {
			out = append(out, e)
		}
	}
	return out
}

// supervisorsOf lists the pids of the supervisors serving container id.
func supervisorsOf(id string) []int {
	var pids []int
	for _, e := range servedBy(id) {
		pids = append(pids, e.PID)
	}
	return pids
}

// served waits up to 2 s for container id to be in a live node
// supervisor's list: the supervisor writes it just after it answered the
// hand-over, off the container's start path.
func served(id string) []nodeEntry {
	es := servedBy(id)
	for deadline := time.Now().Add(2 * time.Second); len(es) == 0 && time.Now().Before(deadline); es = servedBy(id) {
		time.Sleep(20 * time.Millisecond)
	}
	return es
}

// supervisorSocket is the socket of container id's supervisor.
func supervisorSocket(t *testing.T, id string) string {
	es := served(id)
	if len(es) != 1 || es[0].Socket == "" {
		t.Fatalf("supervisors of %s: %+v", id, es)
	}
	return es[0].Socket
}

// impostorEnv makes the test binary a host process that hands a seccomp
// listener of its own (an allow-all filter's) to the supervisor socket it
// names, and exits 0 if the supervisor acknowledged it.
const impostorEnv = "WARD_TEST_IMPOSTOR_SOCKET"

func TestMain(m *testing.M) {
	if sock := os.Getenv(impostorEnv); sock != "" {
		os.Exit(impostor(sock))
	}
	os.Exit(m.Run())
}

func impostor(sock string) int {
	conn, err := landlock.DialSupervisor(sock)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	allow := prog.Program{Audit: prog.NativeAudit(), Insns: []prog.Insn{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}}
	listener, err := prog.Install(allow, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := landlock.HandListener(conn, listener); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("acknowledged")
	return 0
}

// supervisorOf finds the pid of container id's supervisor.
func supervisorOf(t *testing.T, id string) int {
	served(id)
	pids := supervisorsOf(id)
	if len(pids) != 1 {
		t.Fatalf("%d supervisors for %s, want 1", len(pids), id)
	}
	return pids[0]
}

// TestDirectDetection: through ward-runtime (Docker's and Podman's door),
// a container's mount attempt, from its first process and from an exec
// session, is refused as before (EPERM) and raises a Falco-format alert
// naming the rule, ATT&CK, the container and ward's decision (how soon is
// logged); with the container's supervisor killed, the call still fails
// (ENOSYS, never the call).
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
	// A host process reaches the supervisor's socket first, with a
	// seccomp listener of its own: it is not the container's, so it is
	// refused, and the supervisor serves the container as before.
	impostor := exec.Command(os.Args[0], "-test.run=^$")
	impostor.Env = append(os.Environ(), impostorEnv+"="+supervisorSocket(t, "det0"))
	if out, err := impostor.CombinedOutput(); err == nil {
		t.Errorf("a host process handed its listener to det0's supervisor: %s", out)
	}
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

// TestSupervisorNotLeftBehind: a container created and deleted without
// ever starting (a manager that gives up after create) is not served
// forever: nothing connected, so only its record's deletion says it is
// gone; and the node's supervisor exits once it serves no container.
func TestSupervisorNotLeftBehind(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("unstarted", []string{"true"}, nil)
	if out, err := e.wardDetached(root, "create", "--bundle", b, "never0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	served("never0")
	pids := supervisorsOf("never0")
	if len(pids) != 1 {
		t.Fatalf("%d supervisors for the created container, want 1", len(pids))
	}
	if _, stderr, code := e.wardRun(root, "delete", "--force", "never0"); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	for deadline := time.Now().Add(15 * time.Second); len(supervisorsOf("never0")) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
	}
	if pids := supervisorsOf("never0"); len(pids) > 0 {
		t.Errorf("supervisor %v still serving never0 after the container was deleted", pids)
	}
	// With no container left, the node's supervisor exits after its
	// linger (10 s).
	node := pids[0]
	for deadline := time.Now().Add(30 * time.Second); unix.Kill(node, 0) == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
	}
	if unix.Kill(node, 0) == nil {
		served, _ := filepath.Glob("/run/ward-supervisor/node-*.d/*.json")
		t.Errorf("the node's supervisor %d still runs with no container of this test left (its list: %v)", node, served)
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
		t.Fatalf("no mount alert: %v", e.alerts())
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

// auditDetectionConfig writes, once, ward's configuration with a policy
// whose detection is in audit mode (every notified call runs, and
// alerts), everything else as e.config; it returns its path.
func (e *env) auditDetectionConfig() string {
	t := e.t
	pol, cfg := filepath.Join(e.dir, "detection-audit.yaml"), filepath.Join(e.dir, "runtime-detection-audit.yaml")
	if _, err := os.Stat(cfg); err == nil {
		return cfg
	}
	base, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pol, []byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nextends: default\ndetection:\n  mode: audit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(base, []byte("policy: "+pol+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// doorCLI is a container manager's command line (docker, podman) with
// ward-runtime as its runtime: cli under e.config, audit under
// auditDetectionConfig; run and auditRun are `run`'s flags for each.
type doorCLI struct {
	cli, audit    func(args ...string) (string, string, int)
	run, auditRun []string
}

// testDetectionDoor: through a container manager, a container's escape
// calls, from its first process and from an exec session, are refused
// (EPERM) and raise Falco-format alerts in the alert file naming the
// container, the rule and ward's decision; under audit the call runs and
// alerts; and no container stays served after it is removed.
func testDetectionDoor(t *testing.T, e *env, c doorCLI) {
	args := func(run []string, extra ...string) []string { return append(slices.Clone(run), extra...) }
	check := func(t *testing.T, id, rule, response string) {
		t.Helper()
		a, ok := e.waitAlert(id, rule, 0)
		if !ok {
			t.Errorf("no %s alert for %s: %v", rule, id, e.alerts())
			return
		}
		f := a.OutputFields
		// The alert names the decision that admitted the container
		// (an exec session logs one of its own).
		var dec map[string]any
		for _, d := range e.decisions() {
			if d["containerID"] == id && d["event"] == "create" {
				dec = d
			}
		}
		if dec == nil || f["ward.decision.id"] != dec["id"] || f["ward.response"] != response || f["ward.door"] != "runtime" ||
			f["container.id"] != id[:12] || !slices.Contains(a.Tags, "T1611") || a.Source != "syscall" {
			t.Errorf("%s alert for %s: %s %v %v (decision %v)", rule, id, a.Rule, a.Tags, f, dec["id"])
		}
	}
	gone := func(t *testing.T, id string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); len(supervisorsOf(id)) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		}
		if pids := supervisorsOf(id); len(pids) > 0 {
			t.Errorf("supervisor %v still serving %s after the container was removed", pids, id)
		}
	}
	cidOf := func(t *testing.T, path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || len(strings.TrimSpace(string(b))) != 64 {
			t.Fatalf("container id file: %q %v", b, err)
		}
		return strings.TrimSpace(string(b))
	}

	t.Run("first process", func(t *testing.T) {
		cidfile := filepath.Join(t.TempDir(), "cid")
		out, stderr, code := c.cli(append(args(c.run, "--cidfile", cidfile), harness.BusyboxImage, "sh", "-c", mountAttempt)...)
		if code != 0 || !strings.Contains(out, "Operation not permitted") && !strings.Contains(out, "permission denied") {
			t.Errorf("mount: exit %d, %q %q; want EPERM", code, out, stderr)
		}
		id := cidOf(t, cidfile)
		check(t, id, "mount", "deny")
		gone(t, id)
	})

	t.Run("exec", func(t *testing.T) {
		out, stderr, code := c.cli(append(args(c.run, "-d"), harness.BusyboxImage, "sleep", "300")...)
		id := strings.TrimSpace(out)
		if code != 0 || len(id) != 64 {
			t.Fatalf("run -d: exit %d, %q %q", code, out, stderr)
		}
		if served(id); len(supervisorsOf(id)) != 1 {
			t.Errorf("%d supervisors for %s, want 1", len(supervisorsOf(id)), id)
		}
		out, stderr, _ = c.cli("exec", id, "sh", "-c", "unshare -U true 2>&1; echo rc=$?")
		if !strings.Contains(out, "Operation not permitted") {
			t.Errorf("exec unshare -U: %q %q, want EPERM", out, stderr)
		}
		check(t, id, "userns", "deny")
		// kill, not stop: sleep as PID 1 ignores SIGTERM, and Podman's
		// rm -f would wait out its stop timeout.
		if _, stderr, code := c.cli("kill", id); code != 0 {
			t.Errorf("kill: %s", stderr)
		}
		// run has --rm: the manager may already be removing the killed
		// container when rm -f comes (Docker then says so and fails).
		if _, stderr, code := c.cli("rm", "-f", id); code != 0 && !strings.Contains(stderr, "already in progress") {
			t.Errorf("rm -f: %s", stderr)
		}
		gone(t, id)
	})

	t.Run("audit", func(t *testing.T) {
		// umount of a missing path: ENOENT when the call runs, EPERM
		// when it is refused.
		cidfile := filepath.Join(t.TempDir(), "cid")
		out, stderr, code := c.audit(append(args(c.auditRun, "--cidfile", cidfile), harness.BusyboxImage, "sh", "-c", "umount /ward-missing 2>&1; echo rc=$?")...)
		if code != 0 || !strings.Contains(out, "No such file or directory") {
			t.Errorf("umount under audit: exit %d, %q %q; want ENOENT (the call ran)", code, out, stderr)
		}
		id := cidOf(t, cidfile)
		check(t, id, "mount", "allow")
		gone(t, id)
	})
}

// TestKilledSupervisorSocketRemoved: a node supervisor killed with
// SIGKILL cannot unlink its containers' sockets; a container's delete
// does, so a node does not collect stale sockets per crash. The next
// container elects a new supervisor.
func TestKilledSupervisorSocketRemoved(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("killed-supervisor", []string{"true"}, nil)
	if out, err := e.wardDetached(root, "create", "--bundle", b, "kill0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	pid, sock := supervisorOf(t, "kill0"), supervisorSocket(t, "kill0")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the supervisor's socket %q: %v", sock, err)
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.wardRun(root, "delete", "--force", "kill0"); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket %s of the killed supervisor after delete: %v, want gone", sock, err)
	}
	// Take-over: the next container is served by a new supervisor.
	b1 := e.newBundle("after-kill", []string{"true"}, nil)
	if out, err := e.wardDetached(root, "create", "--bundle", b1, "kill1"); err != nil {
		t.Fatalf("create after the kill: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "kill1")
	if next := supervisorOf(t, "kill1"); next == pid {
		t.Errorf("kill1 served by the killed supervisor %d", pid)
	}
}

// TestSensorWatchesFirstInstruction: a container that drops and executes a
// binary at once, the first of a state directory whose sensor is not
// loaded yet (the verifier takes the longest then): the sensor is open
// before the workload's first instruction, so the drift is seen. Before,
// the sensor opened in the background after the container was added, and
// what the container did meanwhile was not seen.
func TestSensorWatchesFirstInstruction(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("first", []string{"sh", "-c", "cp /bin/busybox /tmp/dropped && /tmp/dropped true; echo rc=$?; sleep 300"},
		func(s spec) { s["root"].(spec)["readonly"] = false })
	if out, err := e.wardDetached(root, "create", "--bundle", b, "first0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "first0")
	if _, stderr, code := e.wardRun(root, "start", "first0"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	if _, ok := e.waitAlert("first0", "drift", 0); !ok {
		out, _ := os.ReadFile(filepath.Join(e.dir, "detached.out"))
		t.Fatalf("no drift alert for the binary the container dropped and ran at once: %v; output %q", e.alerts(), out)
	}
}
