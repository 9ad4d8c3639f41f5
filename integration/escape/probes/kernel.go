package probes

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Each probe passes arguments the kernel rejects after its permission
// checks: EPERM means the path is closed, EINVAL/EFAULT/EBADF mean the code
// behind the check was reached.

// fileidIno32Gen is the handle type of ext2/3/4 (and others): a 32-bit
// inode number and generation.
const fileidIno32Gen = 1

// openByHandle is shocker: a file bind-mounted from a host disk (the /etc
// files are) gives a mount of the host's filesystem; a handle forged for
// that filesystem's root inode (2, generation 0) opens a directory outside
// everything mounted into the container. The kernel allows that only with
// CAP_DAC_READ_SEARCH; opened O_PATH, nothing is read.
func openByHandle(Env) (Result, string) {
	var lastErr error
	for _, p := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
		if err != nil {
			lastErr = err
			continue
		}
		if h.Type() != fileidIno32Gen || h.Size() != 8 {
			lastErr = fmt.Errorf("%s: handle type %d, not ino32+gen", p, h.Type())
			continue
		}
		mfd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			lastErr = err
			continue
		}
		defer unix.Close(mfd)
		root := unix.NewFileHandle(fileidIno32Gen, []byte{2, 0, 0, 0, 0, 0, 0, 0})
		fd, err := unix.OpenByHandleAt(mfd, root, unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			return syscallVerdict("open_by_handle_at(root inode of "+p+"'s filesystem)", err)
		}
		unix.Close(fd)
		return Escaped, "opened the root directory of the host filesystem behind " + p + " by a forged handle"
	}
	return syscallVerdict("name_to_handle_at", lastErr)
}

func kernelModule(Env) (Result, string) {
	// finit_module on an invalid descriptor: EPERM without CAP_SYS_MODULE
	// or under seccomp, EBADF once the permission check has passed.
	_, _, errno := unix.Syscall(unix.SYS_FINIT_MODULE, ^uintptr(0), 0, 0)
	if errno == 0 || errno == unix.EBADF {
		return Escaped, "finit_module passed its permission check: kernel modules can be loaded"
	}
	return syscallVerdict("finit_module", errno)
}

func kexec(Env) (Result, string) {
	// Invalid flags: EPERM first without CAP_SYS_BOOT, EINVAL after.
	_, _, errno := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xdead0000, 0, 0)
	if errno == 0 {
		return Reachable, "kexec_load accepted"
	}
	return syscallVerdict("kexec_load", errno)
}

func bpfProbe(Env) (Result, string) {
	// BPF_MAP_CREATE with an all-zero attribute is invalid.
	var attr [64]byte
	_, _, errno := unix.Syscall(unix.SYS_BPF, 0, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	if errno == 0 {
		return Reachable, "bpf accepted"
	}
	return syscallVerdict("bpf", errno)
}

func usernsUnshare(env Env) (Result, string) {
	cmd := exec.Command(env.Self, "euid")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	out, err := cmd.Output()
	if err != nil {
		return syscallVerdict("clone(CLONE_NEWUSER)", unwrapErrno(err))
	}
	return Reachable, "a child started in a new user namespace (euid there: " + string(trim(out)) + ")"
}

func unwrapErrno(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	if se, ok := err.(*os.SyscallError); ok {
		return se.Err
	}
	return err
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func keyctlProbe(Env) (Result, string) {
	// KEYCTL_GET_KEYRING_ID of the session keyring, without creating it.
	_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	return syscallVerdict("keyctl", err)
}

func perfEventOpen(Env) (Result, string) {
	// An attribute whose size field is too small is rejected after seccomp
	// but before any counter is created.
	attr := unix.PerfEventAttr{Size: 1}
	_, _, errno := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&attr)), 0, ^uintptr(0), ^uintptr(0), 0, 0)
	if errno == 0 {
		return Reachable, "perf_event_open accepted"
	}
	return syscallVerdict("perf_event_open", errno)
}

func userfaultfd(Env) (Result, string) {
	// Unknown flags: EPERM when userfaultfd is not allowed, EINVAL after.
	_, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, 0x7fff0000, 0, 0)
	if errno == 0 {
		return Reachable, "userfaultfd accepted"
	}
	return syscallVerdict("userfaultfd", errno)
}

func ioUring(Env) (Result, string) {
	// Zero entries and a NULL params pointer.
	_, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 0, 0, 0)
	if errno == 0 {
		return Reachable, "io_uring_setup accepted"
	}
	return syscallVerdict("io_uring_setup", errno)
}

func syslogProbe(Env) (Result, string) {
	// SYSLOG_ACTION_SIZE_BUFFER reads nothing but needs CAP_SYSLOG (or
	// dmesg_restrict=0).
	n, _, errno := unix.Syscall(unix.SYS_SYSLOG, 10, 0, 0)
	if errno == 0 {
		return Reachable, "kernel log readable (" + strconv.Itoa(int(n)) + " byte buffer)"
	}
	return syscallVerdict("syslog", errno)
}

func rawSocket(Env) (Result, string) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err != nil {
		return syscallVerdict("socket(AF_INET, SOCK_RAW)", err)
	}
	unix.Close(fd)
	return Reachable, "raw IPv4 socket opened"
}
