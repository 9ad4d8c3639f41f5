package nodefacts

import (
	"maps"
	"os"
	"path/filepath"
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
// listening sockets bound to a file with that identity, in any network
// namespace (listeningSockets), then the process holding one of them. Where
// the kernel cannot answer that, it falls back to this network namespace's
// /proc/net/unix, matched by the path each socket was bound at.
func listener(id policy.ObjectID, proc string) string {
	// The identity match finds whatever the path table would, so the table
	// is read only when the kernel did not answer for every namespace.
	inodes, err := listeningSockets(id, proc)
	if err != nil {
		if inodes == nil {
			inodes = map[string]bool{}
		}
		maps.Copy(inodes, boundInTable(id, proc))
	}
	if len(inodes) == 0 {
		return ""
	}
	// A listening socket can have several holders: systemd keeps the
	// socket it activated dockerd with, and a daemon's children may inherit
	// it. The one that serves the API is the one that counts, so a holder
	// that is a container manager wins over the first one found.
	first := ""
	for _, pid := range processes(proc) {
		fds, err := os.ReadDir(filepath.Join(proc, pid, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(proc, pid, "fd", fd.Name())); err == nil && inodes[l] {
				b, _ := bounded.ReadFile(filepath.Join(proc, pid, "comm"), 64)
				comm := strings.TrimSpace(string(b))
				if policy.ManagerProcess(comm) {
					return comm
				}
				if first == "" {
					first = comm
				}
				break
			}
		}
	}
	return first
}

// boundInTable returns the sockets in /proc/net/unix whose bind path is,
// now, a file with identity id.
func boundInTable(id policy.ObjectID, proc string) map[string]bool {
	data, err := bounded.ReadFile(filepath.Join(proc, "net", "unix"), maxUnixTable)
	if err != nil {
		return nil
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
	return inodes
}
