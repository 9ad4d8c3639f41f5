package supervisor

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// notif is struct seccomp_notif.
type notif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  seccompData
}

// notifResp is struct seccomp_notif_resp.
type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// The ioctls of a listener (linux/seccomp.h); x/sys has their numbers.
func recv(fd int, n *notif) error {
	*n = notif{} // the kernel refuses a buffer that is not zeroed
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
}

func send(fd int, r *notifResp) error {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(r))
}

// idValid reports whether the notification is still pending: the process
// is still blocked in the call, so what was read of it is its own.
func idValid(fd int, id uint64) bool {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// isListener checks that fd is a seccomp listener: ID_VALID on an id no
// notification has answers ENOENT only on one.
func isListener(fd int) error {
	err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(new(uint64)))
	if err == unix.ENOENT {
		return nil
	}
	return fmt.Errorf("not a seccomp listener: %v", err)
}
