package harness

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
)

// Dockerd is Debian's docker.io daemon (20.10) on private directories and
// socket under Dir, with its own containerd (Debian's, started by dockerd,
// under the exec root), containerd namespace and cgroup parent.
type Dockerd struct {
	t      testing.TB
	Dir    string
	Socket string
	cmd    *exec.Cmd
	cgroup string
}

// DockerResult is one docker client call.
type DockerResult struct {
	Stdout, Stderr string
	Code           int
}

func (r DockerResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, lastLines(r.Stdout, 5), lastLines(r.Stderr, 5))
}

// DebianBin finds a Debian binary even when PATH puts newer ones first:
// dockerd 20.10 starts the containerd it finds on PATH, and it is paired
// with Debian's containerd 1.6, not the tests' v2.
func DebianBin(t testing.TB, name string) string {
	t.Helper()
	for _, d := range []string{"/usr/bin", "/usr/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not installed (Debian docker.io): run `make deps`", name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartDockerd starts dockerd under dir with daemonJSON as its
// configuration file (runtimes, default runtime) and name as its
// containerd namespace and cgroup parent (suffixed with the test's PID),
// and stops it, its containers and mounts when t ends.
func StartDockerd(t testing.TB, dir, name, daemonJSON string) *Dockerd {
	t.Helper()
	// A short socket path: dockerd's containerd socket lives under the
	// exec root and must fit in sun_path.
	d := &Dockerd{t: t, Dir: dir, Socket: filepath.Join(dir, "d.sock"), cgroup: fmt.Sprintf("%s-%d", name, os.Getpid())}
	for _, sub := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o711); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte(daemonJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(DebianBin(t, "dockerd"),
		"--config-file", conf,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+d.Socket, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false",
		"--containerd-namespace", name, "--containerd-plugins-namespace", name+"-plugins",
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
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if r := d.Docker("version"); r.Code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not come up:\n%s", d.LogTail())
		}
	}
	return d
}

// LogTail is the end of dockerd's log.
func (d *Dockerd) LogTail() string { return tail(filepath.Join(d.Dir, "dockerd.log"), 30) }

// Docker runs the docker client against this daemon (classic builder),
// for five minutes at most.
func (d *Dockerd) Docker(args ...string) DockerResult {
	argv := append([]string{DebianBin(d.t, "docker"), "-H", "unix://" + d.Socket}, args...)
	o, e, code := Command(5*time.Minute, append(os.Environ(), "DOCKER_BUILDKIT=0"), argv...)
	return DockerResult{o, e, code}
}

// Command runs argv with env for timeout at most and returns its output
// and exit status (-1 when it could not run or was killed). A child that
// keeps the output pipes open past the command's exit is waited for ten
// seconds, no longer.
func Command(timeout time.Duration, env []string, argv ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return o.String(), e.String(), code
}

// RemoveContainers removes every container of the daemon.
func (d *Dockerd) RemoveContainers() {
	if r := d.Docker("ps", "-aq"); strings.TrimSpace(r.Stdout) != "" {
		d.Docker(append([]string{"rm", "-f"}, strings.Fields(r.Stdout)...)...)
	}
}

func (d *Dockerd) stop() {
	d.RemoveContainers()
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
	for _, m := range MountsUnder(d.Dir) {
		exec.Command("umount", "-l", m).Run()
	}
	// The cgroup parent given to dockerd, in every hierarchy.
	tops, _ := filepath.Glob("/sys/fs/cgroup/*/" + d.cgroup)
	tops = append(tops, filepath.Join("/sys/fs/cgroup", d.cgroup))
	for _, top := range tops {
		RemoveCgroupTree(top)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
