package wardruntime

import (
	"os"
	"os/exec"
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
