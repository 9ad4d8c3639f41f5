package wardruntime

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitPidfd: the wait returns once the process has ended, not before,
// and not only when the descriptor was already non-blocking.
func TestWaitPidfd(t *testing.T) {
	cmd := exec.Command("sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	reaped := make(chan struct{})
	go func() { cmd.Wait(); close(reaped) }()
	t0 := time.Now()
	if err := waitPidfd(f); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("returned after %v, before the process ended", d)
	}
	<-reaped
}

// TestControlSocketMode: the node's control socket is its owner's alone
// (a hand-over carries a container's socket and record).
func TestControlSocketMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.sock")
	f, err := bindControl(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket of mode 0600", fi.Mode())
	}
}
