package prog

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install sets no_new_privs and installs p on every thread of the calling
// process (SECCOMP_FILTER_FLAG_TSYNC), so that no Go runtime thread is
// left unfiltered whichever thread then calls execve. It stacks on any
// filter already installed (runc's, for a workload's own profile): the
// kernel runs every filter and the strictest answer wins.
//
// p.Flags and extraFlags are or-ed into seccomp(2)'s flags. With
// SECCOMP_FILTER_FLAG_NEW_LISTENER (a notify supervisor, issue 16; the
// kernel wants SECCOMP_FILTER_FLAG_TSYNC_ESRCH beside it) the returned fd
// is the listener; it is -1 otherwise.
func Install(p Program, extraFlags uintptr) (int, error) {
	if err := p.check(); err != nil {
		return -1, err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("setting no_new_privs: %w", err)
	}
	// Insn is laid out as unix.SockFilter: the kernel reads p.Insns as is.
	fprog := unix.SockFprog{Len: uint16(len(p.Insns)), Filter: (*unix.SockFilter)(&p.Insns[0])}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC) | uintptr(p.Flags) | extraFlags
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, fmt.Errorf("installing seccomp filter: %w", errno)
	}
	if extraFlags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	if r != 0 {
		// TSYNC reports the thread it could not synchronize.
		return -1, fmt.Errorf("installing seccomp filter: thread %d could not be synchronized", r)
	}
	return -1, nil
}
