package k8s

import (
	"fmt"
	"io/fs"
	"syscall"
)

// ownerOf is a file's numeric owner and group on the host.
func ownerOf(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}
