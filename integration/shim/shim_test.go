// Package shim_test runs containerd-shim-ward-v2 as a CRI runtime handler
// of a private containerd, with real runc and runsc, and checks from inside
// the containers what ward did.
package shim_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
)

// ward starts a containerd with two ward handlers next to plain runc:
// "ward" (runtime_type io.containerd.runc.v2, configured through
// WARD_SHIM_CONFIG) and "ward-audit" (another runtime_type, so containerd
// sends runtimeoptions with a TOML body naming the audit configuration).
type ward struct {
	*harness.Containerd
	StateDir string
	AuditDir string
}

func startWard(t *testing.T) *ward {
	harness.Require(t)
	shimBin := harness.WardBin(t, "containerd-shim-ward-v2")
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		t.Fatalf("runsc not on PATH (integration/install-deps.sh runsc): %v", err)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.NewDir(t)
	w := &ward{StateDir: filepath.Join(dir, "ward"), AuditDir: filepath.Join(dir, "ward-audit")}
	enforce := filepath.Join(dir, "ward-shim.yaml")
	audit := filepath.Join(dir, "ward-audit-shim.yaml")
	auditPolicy := filepath.Join(dir, "audit-policy.yaml")
	writeFile(t, enforce, "stateDir: "+w.StateDir+"\nbackends:\n  runc: "+runc+"\n  runsc: "+runsc+"\n")
	writeFile(t, audit, "stateDir: "+w.AuditDir+"\npolicy: "+auditPolicy+"\nbackends:\n  runc: "+runc+"\n  runsc: "+runsc+"\n")
	out, err := exec.Command(harness.WardBin(t, "ward"), "policy", "default").Output()
	if err != nil {
		t.Fatalf("ward policy default: %v", err)
	}
	writeFile(t, auditPolicy, strings.Replace(string(out), "\nmode: enforce\n", "\nmode: audit\n", 1))
	w.Containerd = harness.StartContainerd(t, harness.Config{
		Dir: dir,
		Env: []string{"WARD_SHIM_CONFIG=" + enforce},
		Runtimes: []harness.Runtime{
			{
				Name: "ward", Path: shimBin,
				Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward"), "SystemdCgroup": false},
				PodAnnotations: []string{"ward.dev/*"},
			},
			{
				Name: "ward-audit", Type: "io.containerd.ward.v2", Path: shimBin,
				Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward-audit"), "WardConfig": audit},
				PodAnnotations: []string{"ward.dev/*"},
			},
		},
	})
	return w
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// status returns the named fields of /proc/self/status inside a container.
func status(t *testing.T, c *harness.Containerd, id string) map[string]string {
	t.Helper()
	out, err := c.Exec(id, "cat", "/proc/self/status")
	if err != nil {
		t.Fatalf("reading /proc/self/status in %s: %v", id, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestHardenedPod(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "ordinary", Handler: "ward"})
	if err != nil {
		t.Fatalf("ordinary pod: %v\n%s", err, w.LogTail(40))
	}
	st := status(t, w.Containerd, p.ContainerID)
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
		t.Errorf("hardened container: Seccomp=%q NoNewPrivs=%q, want 2 and 1", st["Seccomp"], st["NoNewPrivs"])
	}
	t.Logf("CapEff %s", st["CapEff"])
}

func TestRejectedPod(t *testing.T) {
	w := startWard(t)
	_, err := w.RunPod(harness.Pod{Name: "privileged", Handler: "ward", Privileged: true})
	if err == nil {
		t.Fatal("privileged pod started; ward should have rejected it")
	}
	msg := err.Error()
	for _, want := range []string{"ward rejected", "privileged", "reject-host-takeover"} {
		if !strings.Contains(msg, want) {
			t.Errorf("crictl error lacks %q: %s", want, msg)
		}
	}
}

func TestGVisorPod(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "sysadmin", Handler: "ward", AddCaps: []string{"SYS_ADMIN"}})
	if err != nil {
		t.Fatalf("CAP_SYS_ADMIN pod: %v\n%s", err, w.LogTail(40))
	}
	out, err := w.Exec(p.ContainerID, "dmesg")
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	if !strings.Contains(out, "gVisor") {
		t.Errorf("dmesg in the container does not show gVisor's kernel:\n%s", out)
	}
	if err := w.RemovePod(p.SandboxID); err != nil {
		t.Fatalf("removing pod: %v", err)
	}
	if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
		t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
	}
}

// TestGVisorWholePod: a pod marked untrusted at the pod level is decided at
// its sandbox, so the pause container and the app container share one
// gVisor sandbox.
func TestGVisorWholePod(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "untrusted", Handler: "ward", Annotations: map[string]string{"ward.dev/untrusted": "true"},
		Command: []string{"sh", "-c", "echo hello-from-gvisor; exec sleep 3600"}})
	if err != nil {
		t.Fatalf("untrusted pod: %v\n%s", err, w.LogTail(40))
	}
	out, err := w.Exec(p.ContainerID, "dmesg")
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	if !strings.Contains(out, "gVisor") {
		t.Errorf("dmesg in the container does not show gVisor's kernel:\n%s", out)
	}
	// One sandbox: runsc lists both containers with the sandbox's pid.
	list, err := exec.Command("runsc", "--root", filepath.Join(w.StateDir, "runsc", "k8s.io"), "list", "-format", "json").Output()
	if err != nil {
		t.Fatalf("runsc list: %v", err)
	}
	var cs []struct {
		ID  string `json:"id"`
		Pid int    `json:"pid"`
	}
	if err := json.Unmarshal(list, &cs); err != nil {
		t.Fatalf("runsc list: %v: %s", err, list)
	}
	pids := map[string]int{}
	for _, c := range cs {
		pids[c.ID] = c.Pid
	}
	if pids[p.SandboxID] == 0 || pids[p.SandboxID] != pids[p.ContainerID] {
		t.Errorf("pause and app container are not in one gVisor sandbox: %s", list)
	}
	// The app container's stdout reaches its log (runsc binds it at start).
	logs, stderr, err := w.Crictl("logs", p.ContainerID)
	if err != nil || !strings.Contains(logs+stderr, "hello-from-gvisor") {
		t.Errorf("crictl logs: %q %q %v", logs, stderr, err)
	}
	if err := w.RemovePod(p.SandboxID); err != nil {
		t.Fatalf("removing pod: %v", err)
	}
	if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
		t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
	}
}
