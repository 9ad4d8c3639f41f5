package response_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/incident"
)

// responsesPolicy answers the three rules busybox can reach three ways:
// mount lets the call through and alerts, userns kills the container,
// setns keeps the default (deny, EPERM).
const responsesPolicy = `apiVersion: ward.dev/v1alpha1
kind: Policy
extends: default
detection:
  responses:
    - {rule: mount, response: alert}
    - {rule: userns, response: kill}
`

// The attempts, each printing busybox's error (the errno's text): umount
// of a missing path fails ENOENT when the call runs, EPERM when refused.
const (
	allowedAttempt = `umount /ward-missing 2>&1; echo rc=$?`
	deniedAttempt  = `nsenter -t 1 -m true 2>&1; echo rc=$?`
	killAttempt    = `unshare -U true 2>&1; echo rc=$?`
)

// shimPods is a containerd whose "ward" handler runs
// containerd-shim-ward-v2 under responsesPolicy.
type shimPods struct {
	*harness.Containerd
	state string // ward's stateDir
}

func startShimPods(t *testing.T) *shimPods {
	t.Helper()
	harness.Require(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.NewDir(t)
	s := &shimPods{state: filepath.Join(dir, "ward")}
	pol, cfg := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "ward-shim.yaml")
	for path, data := range map[string]string{
		pol: responsesPolicy,
		cfg: "stateDir: " + s.state + "\npolicy: " + pol + "\nbackends:\n  runc: {binary: " + runc + "}\n" + harness.UsernsConfig(t, dir),
	} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.Containerd = harness.StartContainerd(t, harness.Config{
		Dir: dir,
		Env: []string{"WARD_CONFIG=" + cfg},
		Runtimes: []harness.Runtime{{
			Name: "ward", Path: harness.WardBin(t, "containerd-shim-ward-v2"),
			Options: map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward"), "SystemdCgroup": false},
		}},
	})
	return s
}

func (s *shimPods) alerts(t *testing.T) []alert.Alert {
	return harness.Alerts(t, filepath.Join(s.state, alert.FileName))
}

// waitAlert waits for an alert of rule about container id.
func (s *shimPods) waitAlert(t *testing.T, id, rule string) alert.Alert {
	t.Helper()
	var found alert.Alert
	waitFor(t, rule+" alert for "+id, func() bool {
		as := s.alerts(t)
		i := slices.IndexFunc(as, func(a alert.Alert) bool {
			return a.OutputFields["container.full_id"] == id && a.OutputFields["ward.rule"] == rule
		})
		if i >= 0 {
			found = as[i]
		}
		return i >= 0
	})
	return found
}

// crictlState is a container's state and exit code as crictl inspect
// reports them.
func (s *shimPods) crictlState(t *testing.T, id string) (string, int) {
	t.Helper()
	out, _, err := s.Crictl("inspect", id)
	if err != nil {
		t.Fatalf("crictl inspect %s: %v", id, err)
	}
	var st struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("crictl inspect %s: %v: %s", id, err, out)
	}
	return st.Status.State, st.Status.ExitCode
}

// TestShimResponses: in CRI pods on containerd-shim-ward-v2, a policy's
// per-rule responses act as it says: the default (deny) answers EPERM and
// alerts, alert lets the call run and alerts, kill freezes the container,
// writes its incident bundle while it is frozen and kills it; a bystander
// pod is untouched, and raises nothing.
func TestShimResponses(t *testing.T) {
	s := startShimPods(t)
	bystander, err := s.RunPod(harness.Pod{Name: "bystander", Handler: "ward"})
	if err != nil {
		t.Fatalf("bystander pod: %v\n%s", err, s.LogTail(40))
	}
	attempts, err := s.RunPod(harness.Pod{Name: "attempts", Handler: "ward"})
	if err != nil {
		t.Fatalf("attempts pod: %v\n%s", err, s.LogTail(40))
	}
	victim, err := s.RunPod(harness.Pod{Name: "victim", Handler: "ward"})
	if err != nil {
		t.Fatalf("victim pod: %v\n%s", err, s.LogTail(40))
	}
	check := func(a alert.Alert, id, pod, response string) {
		t.Helper()
		f := a.OutputFields
		if f["k8s.pod.name"] != pod || f["k8s.ns.name"] != "ward-it" || f["ward.response"] != response ||
			f["ward.door"] != "shim" || f["ward.decision.id"] == nil || f["ward.decision.id"] == "" || !slices.Contains(a.Tags, "T1611") {
			t.Errorf("%s alert for %s: %v %v", f["ward.rule"], id, a.Tags, f)
		}
	}

	t.Run("deny", func(t *testing.T) {
		out, _ := s.Exec(attempts.ContainerID, "sh", "-c", deniedAttempt)
		if !strings.Contains(out, "Operation not permitted") {
			t.Errorf("setns under deny: %q, want EPERM", out)
		}
		check(s.waitAlert(t, attempts.ContainerID, "setns"), attempts.ContainerID, "attempts", "deny")
	})

	t.Run("alert", func(t *testing.T) {
		out, _ := s.Exec(attempts.ContainerID, "sh", "-c", allowedAttempt)
		if !strings.Contains(out, "No such file or directory") {
			t.Errorf("umount under alert: %q, want ENOENT (the call ran)", out)
		}
		check(s.waitAlert(t, attempts.ContainerID, "mount"), attempts.ContainerID, "attempts", "allow")
		if st, _ := s.crictlState(t, attempts.ContainerID); st != "CONTAINER_RUNNING" {
			t.Errorf("after deny and alert the container is %s", st)
		}
	})

	t.Run("kill", func(t *testing.T) {
		// The exec session is killed with its container: its own
		// outcome is not what is checked.
		s.Exec(victim.ContainerID, "sh", "-c", killAttempt)
		check(s.waitAlert(t, victim.ContainerID, "userns"), victim.ContainerID, "victim", "kill")
		waitFor(t, "the victim to exit", func() bool { st, _ := s.crictlState(t, victim.ContainerID); return st == "CONTAINER_EXITED" })
		if _, code := s.crictlState(t, victim.ContainerID); code != 128+9 {
			t.Errorf("victim's exit code %d, want SIGKILL's 137", code)
		}
		store := incident.NewStore(s.state)
		var ms []incident.Manifest
		waitFor(t, "the incident bundle", func() bool { ms, _ = store.List(); return len(ms) > 0 })
		if len(ms) != 1 {
			t.Fatalf("%d incident bundles, want the victim's: %+v", len(ms), ms)
		}
		m := ms[0]
		// Frozen while collected: the kill came after.
		if m.Container.ID != victim.ContainerID || m.Container.Freezer != freezer.Frozen || m.Trigger.Response != "kill" ||
			m.Container.Processes < 2 || m.Workload == nil || m.Workload.Pod != "victim" {
			t.Errorf("incident: %+v", m)
		}
		if err := store.Verify(m.ID); err != nil {
			t.Error(err)
		}
	})

	t.Run("bystander", func(t *testing.T) {
		if st, _ := s.crictlState(t, bystander.ContainerID); st != "CONTAINER_RUNNING" {
			t.Errorf("bystander is %s", st)
		}
		if out, err := s.Exec(bystander.ContainerID, "echo", "alive"); err != nil || !strings.Contains(out, "alive") {
			t.Errorf("bystander exec: %q %v", out, err)
		}
		for _, a := range s.alerts(t) {
			if a.OutputFields["container.full_id"] == bystander.ContainerID {
				t.Errorf("bystander raised %s", a.Output)
			}
		}
	})
	// The attempts pod and the bystander stay up until the cleanup:
	// the victim's kill must not have reached them.
	for _, id := range []string{attempts.ContainerID, bystander.ContainerID} {
		if st, _ := s.crictlState(t, id); st != "CONTAINER_RUNNING" {
			t.Errorf("%s is %s after the victim's kill", id, st)
		}
	}
}

// TestShimRuntimeDefault: a CRI pod that asks for containerd's
// RuntimeDefault profile, which refuses the mount family and setns
// itself, still raises ward's alerts: ward compiles the profile, composes
// it with its baseline, and answers the attempts as the profile does.
// The profile's EPERM stands even where ward's rule lets the call run
// (mount: alert), and the alert says so (deny). The first process and an
// exec session get the same filters (ward-init installs both).
func TestShimRuntimeDefault(t *testing.T) {
	s := startShimPods(t)
	pod, err := s.RunPod(harness.Pod{Name: "runtime-default", Handler: "ward", RuntimeDefault: true,
		Command: []string{"sh", "-c", "umount /ward-missing; exec sleep 3600"}})
	if err != nil {
		t.Fatalf("pod: %v\n%s", err, s.LogTail(40))
	}
	check := func(a alert.Alert, response string) {
		t.Helper()
		if f := a.OutputFields; f["k8s.pod.name"] != "runtime-default" || f["ward.response"] != response || f["ward.door"] != "shim" {
			t.Errorf("%s alert: %v", f["ward.rule"], f)
		}
	}
	// The first process's umount, answered by the profile (deny) though
	// ward's rule for mount is alert.
	check(s.waitAlert(t, pod.ContainerID, "mount"), "deny")
	t.Run("exec", func(t *testing.T) {
		// runc installs no profile (the hardened spec has none): an
		// EPERM where ward's rule lets the call run is the profile's,
		// installed by ward-init in the session too. (Its alert is the
		// first process's, deduplicated.)
		out, _ := s.Exec(pod.ContainerID, "sh", "-c", allowedAttempt)
		if !strings.Contains(out, "Operation not permitted") {
			t.Errorf("umount under RuntimeDefault: %q, want the profile's EPERM", out)
		}
		out, _ = s.Exec(pod.ContainerID, "sh", "-c", deniedAttempt)
		if !strings.Contains(out, "Operation not permitted") {
			t.Errorf("setns under RuntimeDefault: %q, want EPERM", out)
		}
		check(s.waitAlert(t, pod.ContainerID, "setns"), "deny")
		// What an ordinary process needs still runs.
		if out, err := s.Exec(pod.ContainerID, "sh", "-c", "echo ok > /tmp/x && cat /tmp/x"); err != nil || !strings.Contains(out, "ok") {
			t.Errorf("ordinary exec: %q %v", out, err)
		}
	})
}
