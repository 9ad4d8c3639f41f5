package workloads_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/policy"
)

// image is the corpus's image in every daemon.
const image = "ward-workloads/bookworm:1"

// dockerd is Debian's docker.io daemon on private directories and socket
// whose default runtime is the one under test: runc itself, or
// ward-runtime (over the same runc) with ward's default policy. Default,
// not --runtime, so that `docker build` runs its steps under it too.
type dockerd struct {
	t       *testing.T
	name    string // "runc" or "ward"
	dir     string
	socket  string
	cmd     *exec.Cmd
	cgroup  string
	decided string // ward's decision log ("" for runc)
}

func debianBin(t *testing.T, name string) string {
	for _, d := range []string{"/usr/bin", "/usr/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not installed (Debian docker.io): run `make deps`", name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// startDockerd starts a daemon whose default runtime is runtime ("runc"
// or "ward") under a temporary directory, and imports the corpus image.
func startDockerd(t *testing.T, runtime, tarball string) *dockerd {
	dir, err := os.MkdirTemp("/var/tmp", "ward-wl-"+runtime+".")
	if err != nil {
		t.Fatal(err)
	}
	// Under ward's user namespace, container root is an unprivileged host
	// ID: it must be able to reach what is below.
	os.Chmod(dir, 0o711)
	d := &dockerd{t: t, name: runtime, dir: dir, socket: filepath.Join(dir, "d.sock"),
		cgroup: fmt.Sprintf("ward-wl-%s-%d", runtime, os.Getpid())}
	for _, sub := range []string{"data", "exec"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o711)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	daemon := fmt.Sprintf(`{"default-runtime":"runc","runtimes":{"runc-1.4":{"path":%q}}}`, runc)
	if runtime == "runc" {
		daemon = fmt.Sprintf(`{"default-runtime":"runc-1.4","runtimes":{"runc-1.4":{"path":%q}}}`, runc)
	} else {
		ward := harness.WardBin(t, "ward-runtime")
		runsc, _ := exec.LookPath("runsc")
		d.decided = filepath.Join(dir, "decisions.jsonl")
		// ward's default policy, with this daemon's data root where a
		// node's /var/lib/docker would be: its volumes and per-container
		// files are the runtime's own (node.runtimeDirs), as on a node.
		data := filepath.Join(dir, "data")
		pol := strings.Replace(string(policy.DefaultYAML()), "  runtimeDirs:\n",
			"  runtimeDirs:\n    - "+data+"/containers\n    - "+data+"/volumes\n", 1)
		if !strings.Contains(pol, data+"/volumes") {
			t.Fatal("the default policy has no node.runtimeDirs to extend")
		}
		polPath := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(polPath, []byte(pol), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "runtime.yaml")
		body := "root: " + filepath.Join(dir, "ward-root") + "\n" + "policy: " + polPath + "\n" +
			"decisionLog: " + d.decided + "\n" +
			"backends:\n  runc: " + runc + "\n  runsc: " + runsc + "\n  runscFlags: [--platform=systrap]\n" +
			harness.UsernsConfig(t, dir)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// runtimeArgs carry ward's configuration: dockerd does not pass
		// its environment through containerd and the shim.
		daemon = fmt.Sprintf(`{"default-runtime":"ward","runtimes":{"ward":{"path":%q,"runtimeArgs":["--ward-config=%s"]}}}`, ward, cfg)
	}
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte(daemon), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(debianBin(t, "dockerd"),
		"--config-file", conf,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+d.socket, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false",
		"--containerd-namespace", "ward-wl-"+runtime, "--containerd-plugins-namespace", "ward-wl-"+runtime+"-plugins",
		"--cgroup-parent", "/"+d.cgroup, "--storage-driver", "overlay2",
	)
	// dockerd 20.10 starts the containerd it finds on PATH: Debian's.
	d.cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(d.stop)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if r := d.docker("version"); r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd (%s) did not come up:\n%s", runtime, d.logTail())
		}
	}
	if r := d.docker("import", tarball, image); r.code != 0 {
		t.Fatalf("docker import: %s", r.stderr)
	}
	return d
}

func (d *dockerd) logTail() string {
	data, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	return tail(string(data), 30)
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, tail(r.stdout, 5), tail(r.stderr, 5))
}

func (d *dockerd) docker(args ...string) result {
	return d.dockerIn(nil, args...)
}

// dockerIn runs the docker client with stdin.
func (d *dockerd) dockerIn(stdin []byte, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianBin(d.t, "docker"), append([]string{"-H", "unix://" + d.socket}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return result{o.String(), e.String(), code}
}

// removeContainers removes every container, so that checks neither
// load the machine nor see each other's.
func (d *dockerd) removeContainers() {
	if r := d.docker("ps", "-aq"); strings.TrimSpace(r.stdout) != "" {
		d.docker(append([]string{"rm", "-f"}, strings.Fields(r.stdout)...)...)
	}
}

func (d *dockerd) stop() {
	d.removeContainers()
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		// dockerd's containerd and shims are in its process group.
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, m := range harness.MountsUnder(d.dir) {
		exec.Command("umount", "-l", m).Run()
	}
	for _, top := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		removeTree(filepath.Join(top, d.cgroup))
		entries, _ := os.ReadDir(top)
		for _, e := range entries {
			removeTree(filepath.Join(top, e.Name(), d.cgroup))
		}
	}
	if !d.t.Failed() || os.Getenv("WARD_KEEP") == "" {
		os.RemoveAll(d.dir)
	}
}

// removeTree removes a cgroup directory tree, deepest first.
func removeTree(top string) {
	var dirs []string
	filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}
