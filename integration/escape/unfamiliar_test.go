package escape_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Host objects under unfamiliar names: ward must judge them by what they
// are on the node, not by their path.

// fakeDockerdEnv makes the test binary, started as "dockerd", listen on a
// unix socket instead of running tests: a container manager's API socket
// as the kernel sees it (its listener's command name is dockerd) under a
// path no list of socket names holds.
const fakeDockerdEnv = "WARD_ESCAPE_FAKE_DOCKERD"

func TestMain(m *testing.M) {
	if p := os.Getenv(fakeDockerdEnv); p != "" {
		os.Exit(serveFakeDockerd(p))
	}
	os.Exit(m.Run())
}

// serveFakeDockerd accepts and closes connections on path, saying "accept"
// on stdout for each, until its parent closes stdin.
//
// It binds under another name and then renames the file, as an operator
// moving a daemon's socket would: /proc/net/unix keeps the name it was
// bound at, so only the file's identity leads to the listener.
func serveFakeDockerd(path string) int {
	bound := path + ".bound"
	l, err := net.Listen("unix", bound)
	if err != nil {
		return 1
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Rename(bound, path); err != nil {
		return 1
	}
	// World-writable, as a socket anyone may reach.
	if err := os.Chmod(path, 0o666); err != nil {
		return 1
	}
	os.Stdout.WriteString("ready\n")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			os.Stdout.WriteString("accept\n")
		}
	}()
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
	l.Close()
	return 0
}

// startFakeDockerd runs the test binary under the name dockerd listening
// on path, and counts its connections in s.accepted[path].
func (s *suite) startFakeDockerd(t *testing.T, dir, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fake-manager", "dockerd")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fakeDockerdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("fake dockerd did not start on %s", path)
	}
	ch := make(chan struct{}, 1024)
	s.accepted[path] = ch
	go func() {
		for sc.Scan() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
}

// aliasHostRoot bind-mounts the host's / (its root filesystem only, not
// the mounts below it) at a fresh directory with an innocent name. The
// directory is removed with os.Remove after a lazy unmount, never
// recursively: a failed unmount must not turn cleanup into deleting the
// host.
func aliasHostRoot(t *testing.T) string {
	t.Helper()
	alias, err := os.MkdirTemp("/var/tmp", "ward-escape-data-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/", alias, "", unix.MS_BIND, ""); err != nil {
		os.Remove(alias)
		t.Fatalf("bind-mounting / at %s: %v", alias, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(alias, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v (left in place)", alias, err)
			return
		}
		os.Remove(alias)
	})
	return alias
}
