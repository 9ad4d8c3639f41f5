package nodefacts

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/policy"
)

func stat(p string) (policy.ObjectID, os.FileMode, bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return policy.ObjectID{}, 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return policy.ObjectID{}, 0, false
	}
	return policy.ObjectID{Dev: uint64(st.Dev), Ino: st.Ino}, fi.Mode(), true
}

// maxUnixTable bounds /proc/net/unix.
const maxUnixTable = 16 << 20

// listener finds the process listening on the unix socket file id: the
// socket inodes bound to a path with that identity (/proc/net/unix, this
// network namespace), then the process holding one of them.
func listener(id policy.ObjectID, proc string) string {
	data, err := bounded.ReadFile(filepath.Join(proc, "net", "unix"), maxUnixTable)
	if err != nil {
		return ""
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// Num RefCount Protocol Flags Type St Inode Path
		if len(f) < 8 || !strings.HasPrefix(f[7], "/") {
			continue
		}
		if pid, _, ok := stat(f[7]); ok && pid == id {
			inodes["socket:["+f[6]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, err := os.ReadDir(proc)
	if err != nil {
		return ""
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(proc, p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(proc, p.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				comm, _ := bounded.ReadFile(filepath.Join(proc, p.Name(), "comm"), 64)
				return strings.TrimSpace(string(comm))
			}
		}
	}
	return ""
}
