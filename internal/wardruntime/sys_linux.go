package wardruntime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

func execve(path string, argv, env []string) error { return syscall.Exec(path, argv, env) }

// spawnSelf is Env.Spawn of the binary.
func spawnSelf(args []string, extra []*os.File) error {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = "ward-runtime"
	cmd.ExtraFiles = extra
	// Its own session: a terminal's ^C for the container's process group
	// must not end it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// idlePriority moves thread tid (0: the calling thread) to SCHED_IDLE.
func idlePriority(tid int) error {
	return unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0)
}

// pidfdSelf is a pidfd of this process, which stays this process across
// execve: after ward execs a backend, it is the backend's.
func pidfdSelf() (*os.File, error) {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open: %w", err)
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// waitPidfd blocks until the process behind f has ended. It waits in the
// runtime's poller, not in a poll(2) holding a thread for the life of the
// process: the node's supervisor waits on one per foreground run.
func waitPidfd(f *os.File) error {
	if err := unix.SetNonblock(int(f.Fd()), true); err != nil {
		return fmt.Errorf("waiting on pidfd: %w", err)
	}
	// Made again from the descriptor, now non-blocking, so that the
	// runtime registers it with its poller.
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return fmt.Errorf("waiting on pidfd: %w", err)
	}
	nb := os.NewFile(uintptr(fd), "pidfd")
	defer nb.Close()
	raw, err := nb.SyscallConn()
	if err != nil {
		return fmt.Errorf("waiting on pidfd: %w", err)
	}
	var perr error
	err = raw.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		k, err := unix.Poll(pfd, 0)
		switch {
		case errors.Is(err, unix.EINTR) || err == nil && k == 0:
			return false
		case err != nil:
			perr = err
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("waiting on pidfd: %w", err)
	}
	return nil
}

func fcntlGetfd(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0) }

// inheritableMemfd puts data in an anonymous file that a backend exec'd by
// ward inherits, and returns a path that opens it (/proc/self/fd/N in the
// backend's own view). Nothing is left on disk to clean up after the
// backend, which replaces ward, has read it. minFD keeps the descriptor
// clear of the ones the caller asked the backend to preserve.
func inheritableMemfd(name string, data []byte, minFD int) (string, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("creating memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return "", fmt.Errorf("writing memfd: %w", err)
	}
	// Sealed: the file the backend reads is the one ward judged.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS,
		unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		return "", fmt.Errorf("sealing memfd: %w", err)
	}
	// F_DUPFD (not _CLOEXEC): the duplicate survives exec.
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD, minFD)
	if err != nil {
		return "", fmt.Errorf("duplicating memfd: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", nfd), nil
}
