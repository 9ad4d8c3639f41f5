//go:build unix

package doctor

import (
	"io/fs"
	"syscall"
)

// groupOf returns a file's group ID.
func groupOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Gid
	}
	return 0
}

// chrootAttr runs a command chrooted into root.
func chrootAttr(root string) *syscall.SysProcAttr { return &syscall.SysProcAttr{Chroot: root} }
