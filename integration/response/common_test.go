// Package response_test checks ward's answers to an escape attempt on real
// containers: the freezer and kill act on the right container only, an
// incident bundle is collected from a frozen one, and the eBPF sensor sees
// what seccomp cannot and names the container's cgroup.
//
// Containers run through ward-runtime on runc (busybox bundles), so each
// has ward's hardened spec, its original beside it and a decision-log
// entry, as on a node. The tests skip unless WARD_INTEGRATION=1 and root;
// `make test-integration` sets both, PATH and WARD_BIN.
package response_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/sensor"
)

// env is one test's ward-runtime setup under a temporary directory.
type env struct {
	t        *testing.T
	dir      string
	root     string // ward-runtime's --root
	ward     string // ward-runtime
	config   string
	state    string // ward's stateDir
	decision string
	runc     string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	harness.Require(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/var/tmp", "ward-resp.")
	if err != nil {
		t.Fatal(err)
	}
	// Container root is an unprivileged host ID under the default
	// policy's user namespace: it must reach the bundles.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, dir: dir, root: filepath.Join(dir, "root"), ward: harness.WardBin(t, "ward-runtime"),
		config: filepath.Join(dir, "ward.yaml"), state: filepath.Join(dir, "state"),
		decision: filepath.Join(dir, "decisions.jsonl"), runc: runc,
	}
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("WARD_KEEP") == "" {
			os.RemoveAll(dir)
			sensor.RemoveOrphans()
		}
	})
	cfg := "stateDir: " + e.state + "\ndecisionLog: " + e.decision + "\n" +
		"backends:\n  runc: {binary: " + runc + "}\n" + "alerts:\n  sensor: true\n" + harness.UsernsConfig(t, dir)
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) environ() []string { return append(os.Environ(), "WARD_CONFIG="+e.config) }

// ward runs ward-runtime.
func (e *env) wardRuntime(args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ward, append([]string{"--root", e.root}, args...)...)
	cmd.Env = e.environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// run creates and starts a container running script, detached; it is
// deleted at cleanup.
func (e *env) run(id, script string) {
	t := e.t
	t.Helper()
	b := filepath.Join(e.dir, id)
	busybox(t, filepath.Join(b, "rootfs"))
	cmd := exec.Command(e.runc, "spec")
	cmd.Dir = b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	var s map[string]any
	data, _ := os.ReadFile(filepath.Join(b, "config.json"))
	json.Unmarshal(data, &s)
	p := s["process"].(map[string]any)
	p["terminal"] = false
	p["args"] = []string{"sh", "-c", script}
	// A writable root, as Docker and Kubernetes give by default.
	s["root"] = map[string]any{"path": "rootfs", "readonly": false}
	data, _ = json.Marshal(s)
	os.WriteFile(filepath.Join(b, "config.json"), data, 0o644)

	// The container outlives create: its stdio is an append-mode file,
	// not the test's pipes.
	f, err := os.OpenFile(filepath.Join(e.dir, id+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := exec.Command(e.ward, "--root", e.root, "create", "--bundle", b, id)
	c.Env = e.environ()
	c.Stdout, c.Stderr = f, f
	if err := c.Run(); err != nil {
		out, _ := os.ReadFile(f.Name())
		t.Fatalf("create %s: %v: %s", id, err, out)
	}
	t.Cleanup(func() { e.wardRuntime("delete", "--force", id) })
	if out, err := e.wardRuntime("start", id); err != nil {
		t.Fatalf("start %s: %v: %s", id, err, out)
	}
}

// ociState is the runtime's state of a container.
type ociState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

func (e *env) stateOf(id string) ociState {
	e.t.Helper()
	out, err := e.wardRuntime("state", id)
	if err != nil {
		e.t.Fatalf("state %s: %v: %s", id, err, out)
	}
	var s ociState
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		e.t.Fatalf("state %s: %v: %s", id, err, out)
	}
	return s
}

// cgroupsPath is the container's linux.cgroupsPath in the spec it ran.
func cgroupsPath(t *testing.T, bundle string) string {
	t.Helper()
	var s struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s.Linux.CgroupsPath
}

// busybox builds a root filesystem of Debian's static busybox.
func busybox(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "cat", "echo", "cp", "chmod", "true", "ls"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
