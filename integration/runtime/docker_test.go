package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// dockerd is Debian's docker.io daemon on private directories and socket,
// with its own containerd (Debian's, started by dockerd, under the exec
// root), its own containerd namespace and cgroup parent, and ward-runtime
// added as runtime "ward".
type dockerd struct {
	e      *env
	dir    string
	socket string
	client string
	cmd    *exec.Cmd
	cgroup string
}

// debianBin finds a Debian binary even when PATH puts newer ones first:
// dockerd 20.10 starts the containerd it finds on PATH, and it is paired
// with Debian's containerd 1.6, not the test's v2.
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

func startDockerd(e *env) *dockerd {
	t := e.t
	d := &dockerd{e: e, dir: filepath.Join(e.dir, "docker"), client: debianBin(t, "docker")}
	// A short socket path: dockerd's containerd socket lives under the
	// exec root and must fit in sun_path.
	d.socket = filepath.Join(d.dir, "d.sock")
	d.cgroup = fmt.Sprintf("ward-it-docker-%d", os.Getpid())
	for _, sub := range []string{"data", "exec"} {
		os.MkdirAll(filepath.Join(d.dir, sub), 0o700)
	}
	conf := filepath.Join(d.dir, "daemon.json")
	// runtimeArgs carry ward's configuration: dockerd does not pass its
	// environment through containerd and the shim to the runtime.
	daemonJSON := fmt.Sprintf(`{"runtimes":{"ward":{"path":%q,"runtimeArgs":["--ward-config=%s"]}}}`, e.ward, e.config)
	if err := os.WriteFile(conf, []byte(daemonJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(d.dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(debianBin(t, "dockerd"),
		"--config-file", conf,
		"--data-root", filepath.Join(d.dir, "data"), "--exec-root", filepath.Join(d.dir, "exec"),
		"-H", "unix://"+d.socket, "--pidfile", filepath.Join(d.dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false",
		"--containerd-namespace", "ward-it-docker", "--containerd-plugins-namespace", "ward-it-docker-plugins",
		"--cgroup-parent", "/"+d.cgroup, "--storage-driver", "overlay2",
	)
	d.cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group, so cleanup can stop dockerd and its containerd.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code := d.docker("version"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not come up:\n%s", d.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return d
}

func (d *dockerd) logTail() string {
	data, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func (d *dockerd) docker(args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.client, append([]string{"-H", "unix://" + d.socket}, args...)...)
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
	return o.String(), e.String(), code
}

func (d *dockerd) stop() {
	if out, _, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
	}
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// dockerd's containerd and shims are in its process group.
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, m := range harness.MountsUnder(d.dir) {
		exec.Command("umount", "-l", m).Run()
	}
	// The cgroup parent the test gave dockerd.
	removeCgroups(d.cgroup)
}

// importBusybox gives dockerd an image without a registry: `docker import`
// of a busybox root filesystem.
func (d *dockerd) importBusybox() {
	t := d.e.t
	fs := filepath.Join(d.dir, "rootfs")
	rootfs(t, fs)
	tarball := filepath.Join(d.dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", fs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if _, stderr, code := d.docker("import", tarball, harness.BusyboxImage); code != 0 {
		t.Fatalf("docker import: %s", stderr)
	}
}

func TestDocker(t *testing.T) {
	e := newEnv(t)
	d := startDockerd(e)
	d.importBusybox()
	run := func(extra ...string) []string {
		return append([]string{"run", "--rm", "--runtime", "ward", "--network", "none"}, extra...)
	}

	t.Run("hardened", func(t *testing.T) {
		out, stderr, code := d.docker(append(run(), harness.BusyboxImage, "sh", "-c", statusScript)...)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, stderr, d.logTail())
		}
		assertHardened(t, out)
	})

	t.Run("exec", func(t *testing.T) {
		_, stderr, code := d.docker("run", "-d", "--name", "dk-x", "--runtime", "ward", "--network", "none", harness.BusyboxImage, "sleep", "300")
		if code != 0 {
			t.Fatalf("run -d: %s", stderr)
		}
		defer d.docker("rm", "-f", "dk-x")
		out, stderr, code := d.docker("exec", "--privileged", "dk-x", "sh", "-c", statusScript)
		if code != 0 {
			t.Fatalf("exec: exit %d: %s", code, stderr)
		}
		assertHardened(t, out)
	})

	t.Run("gvisor", func(t *testing.T) {
		// Docker 20.10 has no --annotation; a dangerous capability is what
		// sends this container to gVisor (policy rule sandbox-kernel-surface).
		out, stderr, code := d.docker(append(run("--cap-add", "SYS_ADMIN"), harness.BusyboxImage, "dmesg")...)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, stderr, d.logTail())
		}
		if !strings.Contains(out, gvisorBanner) {
			t.Errorf("not gVisor's kernel: %q", out)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		_, stderr, code := d.docker(append(run("--privileged"), harness.BusyboxImage, "true")...)
		if code == 0 {
			t.Fatal("a privileged container ran")
		}
		// docker run's status when the daemon fails to start the container.
		if code != 125 {
			t.Errorf("exit %d, want docker's 125", code)
		}
		if !rejectMsg.MatchString(stderr) || !strings.Contains(stderr, "privileged") {
			t.Errorf("docker does not show ward's reason: %s", stderr)
		}
		t.Logf("docker run --privileged: exit %s: %s", strconv.Itoa(code), strings.TrimSpace(stderr))
	})
}
