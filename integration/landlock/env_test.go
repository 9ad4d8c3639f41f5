package landlock_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/policy"
)

// env is what every test here needs: runc, ward-init, the probe helper and
// a judge whose pipeline has the Landlock step.
type env struct {
	runc     string
	launcher string
	probe    string
	root     string // runc --root
	n        int    // containers created, for unique ids
	// outputs maps a created container to the file holding its stdout
	// and stderr.
	outputs map[string]string
	judge   *judge.Judge
	plain   *judge.Judge // the same policy without the Landlock step
}

// need skips unless integration tests were asked for and can run, and
// fails when the kernel should enforce Landlock and does not.
func need(t *testing.T, policyYAML string) *env {
	t.Helper()
	if os.Getenv("WARD_INTEGRATION") != "1" {
		t.Skip("integration test: set WARD_INTEGRATION=1 (make test-integration)")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root to run runc")
	}
	if abi := landlock.DetectABI(); abi < 6 {
		lsm, _ := os.ReadFile("/sys/kernel/security/lsm")
		if strings.Contains(string(lsm), "landlock") {
			t.Fatalf("Landlock is an active LSM (%s) but the ABI is %d; these tests need 6", strings.TrimSpace(string(lsm)), abi)
		}
		t.Skipf("Landlock is not active on this kernel (ABI %d)", abi)
	}
	e := &env{runc: findRunc(t), root: t.TempDir(), outputs: map[string]string{}}
	bin := t.TempDir()
	e.launcher = os.Getenv("WARD_BIN")
	if e.launcher != "" {
		e.launcher = filepath.Join(e.launcher, "ward-init")
	} else {
		e.launcher = filepath.Join(bin, "ward-init")
		goBuild(t, e.launcher, "github.com/ward-runtime/ward/cmd/ward-init")
	}
	if _, err := os.Stat(e.launcher); err != nil {
		t.Fatalf("ward-init: %v (run make build)", err)
	}
	e.probe = filepath.Join(bin, "llprobe")
	goBuild(t, e.probe, "./testdata/llprobe")

	p, err := policy.Parse([]byte(policyYAML), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	// ward-init installs ward's compiled seccomp baseline, as in the
	// front doors (content-addressed files: sharing the node's directory
	// with them is safe).
	if e.judge, err = judge.New(p, judge.Options{Launcher: e.launcher, FilterDir: seccompbpf.DefaultDir}); err != nil {
		t.Fatal(err)
	}
	if e.plain, err = judge.New(p, judge.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cleanup(t) })
	return e
}

// basePolicy is a policy with the default Landlock profile and one with
// TCP allow-lists.
const basePolicy = `apiVersion: ward.dev/v1alpha1
kind: Policy
landlock:
  profile: wx
  profiles:
    - name: wx-net
      extends: wx
      network:
        tcpConnect: [8080]
        tcpBind: [8080]
  select:
    - name: net-test
      reason: the test asks for the network allow-lists
      match: {annotations: {ward.test/profile: wx-net}}
      profile: wx-net
`

func findRunc(t *testing.T) string {
	if p := "/opt/ward-deps/bin/runc"; fileExists(p) {
		return p
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not found (make deps)")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
}

// image builds a rootfs from the host's static busybox: applets as hard
// links in /bin, the probe, a shell script in /usr/local/bin and an app
// directory outside the usual program directories.
func (e *env) image(t *testing.T) string {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "tmp", "root", "var/tmp", "run", "usr/local/bin", "app"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	harness.CopyFile(t, "/bin/busybox", filepath.Join(rootfs, "bin/busybox"), 0o755)
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v (install busybox-static)", err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			_ = os.Link(filepath.Join(rootfs, "bin/busybox"), filepath.Join(rootfs, "bin", a))
		}
	}
	harness.CopyFile(t, e.probe, filepath.Join(rootfs, "bin/llprobe"), 0o755)
	writeFile(t, filepath.Join(rootfs, "usr/local/bin/hello.sh"), "#!/bin/sh\necho hello from the image\n", 0o755)
	writeFile(t, filepath.Join(rootfs, "app/serve.sh"), "#!/bin/sh\necho app $0 $*\n", 0o755)
	writeFile(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	return rootfs
}

func writeFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// spec is `runc spec`'s default, non-terminal, with a tmpfs /tmp that
// allows execution (so that only Landlock can refuse it).
func spec(rootfs string, readonly bool, args ...string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "WORKLOAD_VAR=kept"},
			Cwd:  "/root",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Effective: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Permitted: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Root:     &specs.Root{Path: rootfs, Readonly: readonly},
		Hostname: "ward-landlock",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
		},
	}
}

// harden runs s through ward's pipeline, with or without the Landlock
// step, and fails unless the verdict is to harden.
func (e *env) harden(t *testing.T, s *specs.Spec, withLandlock bool) judge.Verdict {
	t.Helper()
	j := e.plain
	if withLandlock {
		j = e.judge
	}
	v, err := j.Spec(policy.Input{Spec: s, Workload: bundle.WorkloadOf(s)})
	if err != nil {
		t.Fatalf("hardening: %v", err)
	}
	if v.Action != policy.Harden {
		t.Fatalf("verdict %s (%s), want harden", v.Action, v.Reason)
	}
	return v
}

// bundleFor writes s as a bundle and returns its directory.
func bundleFor(t *testing.T, s *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), string(b), 0o644)
	return dir
}

// result is a finished runc command.
type result struct {
	code           int
	stdout, stderr string
}

// runc runs one runc command with the container's stdio in files (a
// detached container keeps them open, so pipes would never end).
func (e *env) runcCmd(t *testing.T, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "err"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd := exec.Command(e.runc, append([]string{"--root", e.root}, args...)...)
	cmd.Stdout, cmd.Stderr = out, errf
	err = cmd.Run()
	r := result{}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("runc %v: %v", args, err)
	}
	o, _ := os.ReadFile(out.Name())
	se, _ := os.ReadFile(errf.Name())
	r.stdout, r.stderr = string(o), string(se)
	return r
}

// run runs the spec to completion with `runc run`.
func (e *env) run(t *testing.T, s *specs.Spec) result {
	t.Helper()
	id := e.nextID()
	return e.runcCmd(t, "run", "--bundle", bundleFor(t, s), id)
}

func (e *env) nextID() string {
	e.n++
	return fmt.Sprintf("ll-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6, e.n)
}

// create creates (not starts) a container and returns its id and PID.
func (e *env) create(t *testing.T, s *specs.Spec) (string, int) {
	t.Helper()
	id := e.nextID()
	bdir := bundleFor(t, s)
	out, err := os.OpenFile(filepath.Join(bdir, "output"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(e.runc, "--root", e.root, "create", "--bundle", bdir, id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("runc create: %v %s", err, b)
	}
	e.outputs[id] = out.Name()
	st := e.runcCmd(t, "state", id)
	var state struct{ Pid int }
	if err := json.Unmarshal([]byte(st.stdout), &state); err != nil || state.Pid == 0 {
		t.Fatalf("runc state: %v %q", err, st.stdout)
	}
	return id, state.Pid
}

// waitStopped waits for a started container to exit.
func (e *env) waitStopped(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var state struct{ Status string }
		_ = json.Unmarshal([]byte(e.runcCmd(t, "state", id).stdout), &state)
		if state.Status == "stopped" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("container %s did not stop", id)
}

func (e *env) cleanup(t *testing.T) {
	out := e.runcCmd(t, "list", "-q")
	for _, id := range strings.Fields(out.stdout) {
		e.runcCmd(t, "delete", "--force", id)
	}
}

// inNetns runs fn on a thread in the network namespace of pid. Sockets fn
// creates stay in that namespace; the thread is discarded afterwards.
func inNetns(t *testing.T, pid int, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// Not unlocked: the thread exits with the goroutine, so no
		// other goroutine ever runs in the container's namespace.
		runtime.LockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		done <- fn()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// loopbackUp brings lo up in the current network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

func contains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s: want %q in\n%s", what, want, got)
	}
}
