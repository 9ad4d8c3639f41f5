package nodefacts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/policy"
)

// The socket-diagnostics netlink interface for unix sockets
// (linux/unix_diag.h); x/sys/unix has the netlink framing but not these.
const (
	udiagShowVFS = 0x2 // UDIAG_SHOW_VFS: the inode and device of the bound file
	unixDiagVFS  = 1   // UNIX_DIAG_VFS attribute
	tcpListen    = 10  // TCP_LISTEN, the state unix_diag reports for a listener
	unixDiagReq  = 24  // sizeof(struct unix_diag_req)
	unixDiagMsg  = 16  // sizeof(struct unix_diag_msg)
	maxDumpTries = 3   // a dump the kernel marks interrupted is redone
)

// errDumpInterrupted: the socket table changed while the kernel dumped it
// (NLM_F_DUMP_INTR), so the dump may have missed a socket.
var errDumpInterrupted = errors.New("unix socket dump interrupted by a concurrent change")

// listeningSockets returns the sockfs inodes ("socket:[N]" in a process's
// fd table) of the listening unix sockets whose bound file is id, searched
// in every network namespace a process on the node is in.
//
// It matches by the bound file's identity, which the kernel reports
// (UDIAG_SHOW_VFS), not by the path the socket was bound at: that path is
// spelled in the binder's mount namespace and stays in /proc/net/unix after
// the file is renamed, so a path match misses a renamed or re-homed daemon
// socket. A netlink dump is also consistent or says it is not
// (NLM_F_DUMP_INTR), where /proc/net/unix read in pages can skip entries
// while sockets come and go. The kernel gives the bound inode's number in
// 32 bits; the device must match too.
func listeningSockets(id policy.ObjectID, proc string) (map[string]bool, error) {
	netnsPaths := networkNamespaces(proc)
	found := map[string]bool{}
	var firstErr error
	errc := make(chan error, 1)
	// Entering a network namespace changes the calling thread only. The
	// goroutine keeps its thread locked and never unlocks it, so the Go
	// runtime discards that thread when the goroutine returns instead of
	// handing it, possibly still in another namespace, to other code.
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer unix.Close(own)
		for _, p := range netnsPaths {
			if err := dumpIn(p, own, id, found); err != nil && firstErr == nil {
				firstErr = err
			}
			// A file is bound to one socket at most (bind fails on an
			// existing name): once found, the other namespaces cannot
			// add to it.
			if len(found) > 0 {
				firstErr = nil
				break
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return found, firstErr
}

// dumpIn adds to found the listeners bound to id in the network namespace
// at nsPath ("" is the calling thread's own).
func dumpIn(nsPath string, own int, id policy.ObjectID, found map[string]bool) error {
	if nsPath != "" {
		ns, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // the process left; its namespace is checked through another or is gone
		}
		err = unix.Setns(ns, unix.CLONE_NEWNET)
		unix.Close(ns)
		if err != nil {
			return fmt.Errorf("entering network namespace %s: %w", nsPath, err)
		}
	}
	// The netlink socket belongs to the namespace it was created in, so
	// the thread can go back before the dump.
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if nsPath != "" {
		if serr := unix.Setns(own, unix.CLONE_NEWNET); serr != nil {
			if err == nil {
				unix.Close(fd)
			}
			return fmt.Errorf("returning from network namespace %s: %w", nsPath, serr)
		}
	}
	if err != nil {
		return fmt.Errorf("opening a sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	for try := 0; ; try++ {
		got, err := dump(fd, id)
		if errors.Is(err, errDumpInterrupted) && try+1 < maxDumpTries {
			continue
		}
		for ino := range got {
			found[ino] = true
		}
		return err
	}
}

// dump asks the kernel for every listening unix socket with its bound
// file's identity and returns those bound to id.
func dump(fd int, id policy.ObjectID) (map[string]bool, error) {
	req := make([]byte, unix.NLMSG_HDRLEN+unixDiagReq)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1) // sequence
	b := req[unix.NLMSG_HDRLEN:]
	b[0] = unix.AF_UNIX
	ne.PutUint32(b[4:], 1<<tcpListen)
	ne.PutUint32(b[12:], udiagShowVFS)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("asking for the unix socket table: %w", err)
	}
	out := map[string]bool{}
	interrupted := false
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("reading the unix socket table: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parsing the unix socket table: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				if interrupted {
					return out, errDumpInterrupted
				}
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("reading the unix socket table: %w", unix.Errno(-errno))
					}
				}
				return nil, errors.New("reading the unix socket table: netlink error")
			}
			if ino, ok := boundTo(m.Data, id); ok {
				out["socket:["+strconv.FormatUint(uint64(ino), 10)+"]"] = true
			}
		}
	}
}

// boundTo parses one unix_diag_msg and says whether its UNIX_DIAG_VFS
// attribute names id, returning the socket's own inode.
func boundTo(data []byte, id policy.ObjectID) (uint32, bool) {
	if len(data) < unixDiagMsg {
		return 0, false
	}
	ne := binary.NativeEndian
	sock := ne.Uint32(data[4:])
	attrs := data[unixDiagMsg:]
	for len(attrs) >= unix.SizeofRtAttr {
		l := int(ne.Uint16(attrs[0:]))
		typ := ne.Uint16(attrs[2:])
		if l < unix.SizeofRtAttr || l > len(attrs) {
			return 0, false
		}
		if typ == unixDiagVFS && l >= unix.SizeofRtAttr+8 {
			ino := ne.Uint32(attrs[4:])
			dev := ne.Uint32(attrs[8:])
			// The kernel's internal dev_t: major in the top 12 bits,
			// minor in the low 20.
			if ino == uint32(id.Ino) && dev>>20 == unix.Major(id.Dev) && dev&0xfffff == unix.Minor(id.Dev) {
				return sock, true
			}
			return 0, false
		}
		step := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if step > len(attrs) {
			break
		}
		attrs = attrs[step:]
	}
	return 0, false
}

// networkNamespaces lists one /proc/<pid>/ns/net path for each network
// namespace other than the caller's that a process is in, and "" for the
// caller's own.
func networkNamespaces(proc string) []string {
	paths := []string{""}
	seen := map[policy.ObjectID]bool{}
	if self, _, ok := stat("/proc/thread-self/ns/net"); ok {
		seen[self] = true
	}
	for _, pid := range processes(proc) {
		path := filepath.Join(proc, pid, "ns", "net")
		id, _, ok := stat(path)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		paths = append(paths, path)
	}
	return paths
}
