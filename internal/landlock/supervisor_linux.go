package landlock

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The handshake with ward's supervisor (package supervisor reads it):
// ward-init sends one byte, HelloByte, with the filter's listener fd as
// SCM_RIGHTS; the supervisor answers AckByte once it watches the
// listener. Anything else, or nothing within supervisorTimeout, and the
// workload does not start: its escape system calls would have no one to
// answer them (the kernel would return ENOSYS, not a decision).
const (
	HelloByte = 'W'
	AckByte   = 'k'
)

// supervisorTimeout bounds the wait for the supervisor's answer.
const supervisorTimeout = 10

// DialSupervisor connects to the supervisor socket at path. ward-init
// does it before Landlock restricts it, so a ruleset never has to allow
// it.
func DialSupervisor(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("connecting to ward's supervisor: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connecting to ward's supervisor at %s: %w", path, err)
	}
	tv := unix.Timeval{Sec: supervisorTimeout}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connecting to ward's supervisor: %w", err)
	}
	return fd, nil
}

// HandListener gives the listener to the supervisor and waits for its
// acknowledgement; it closes both fds.
func HandListener(sock, listener int) error {
	defer unix.Close(sock)
	defer unix.Close(listener)
	for {
		err := unix.Sendmsg(sock, []byte{HelloByte}, unix.UnixRights(listener), nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("handing the seccomp listener to ward's supervisor: %w", err)
		}
		break
	}
	var b [1]byte
	for {
		n, err := unix.Read(sock, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for ward's supervisor: %w", err)
		}
		if n != 1 || b[0] != AckByte {
			return errors.New("ward's supervisor refused the seccomp listener")
		}
		return nil
	}
}
