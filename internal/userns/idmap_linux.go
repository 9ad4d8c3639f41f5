package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotIdmappable is returned when a filesystem refuses an idmapped
// mount (mount_setattr fails with EINVAL or EOPNOTSUPP): overlayfs itself,
// network filesystems, old kernels.
var ErrNotIdmappable = errors.New("filesystem cannot be idmapped")

// Namespace is a user namespace with one block mapped, held open so that
// mounts can be idmapped with it.
type Namespace struct {
	f *os.File
}

// NewNamespace creates a user namespace mapping container IDs 0..r.Size-1
// to r, users and groups alike, and holds a descriptor of it: the
// descriptor alone keeps the namespace alive (newNamespace says how).
func NewNamespace(r Range) (*Namespace, error) {
	return newNamespace(r, []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.Start), Size: int(r.Size)}})
}

// newUpperNamespace is the namespace of a writable layer's idmapped mount:
// the block, and host root as the one ID past it (r.Size). A manager that
// writes into a running container as host root through ward's overlay
// (podman cp joins the container's mount namespace) is then stored as
// r.Size instead of failing with EOVERFLOW; the container, which maps only
// the block, sees such a file as nobody's, as before the layer was
// idmapped, and the next create gives it to container root (remapUpper).
// Only the upper layer's mount uses it: an image file owned by r.Size must
// never appear as host root.
func newUpperNamespace(r Range) (*Namespace, error) {
	return newNamespace(r, []syscall.SysProcIDMap{
		{ContainerID: 0, HostID: int(r.Start), Size: int(r.Size)},
		{ContainerID: int(r.Size), HostID: 0, Size: 1},
	})
}

// newNamespace makes the namespace with a child that runs nothing: cloned
// into a new user namespace, it executes this binary under ptrace and so
// stops before its first instruction. From here its ID maps are written
// (setgroups denied, as for any namespace whose maps a parent writes), a
// descriptor of its namespace is opened, and the child is killed.
//
// The clone shares this process's memory and suspends it until the
// child's exec (CLONE_VM|CLONE_VFORK, as os/exec does for every other
// start): os/exec would otherwise copy the whole address space for a user
// namespace, because its child must wait for the parent to write the maps.
// This child does not wait: nothing runs in the namespace before the maps
// are written, since the child is stopped at the exec. Measured on a
// 2-core VM: about 1.8 ms of CPU and 4 page faults against 8.6 ms and 70
// (BenchmarkNewNamespace; the copy of the page tables dominated).
//
// The child is started with syscall.ForkExec, not os/exec: it never runs,
// so it needs none of what os/exec prepares (/dev/null for its stdio, a
// pidfd), and os.StartProcess's first call in a process probes pidfd
// support with a clone of its own, one more process on ward-runtime's
// start path (docs/benchmarks.md, session 8).
func newNamespace(r Range, m []syscall.SysProcIDMap) (*Namespace, error) {
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"ward-userns-holder"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_VM | syscall.CLONE_VFORK,
			Ptrace:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating a user namespace for %s: %w", r, err)
	}
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		for {
			if _, err := unix.Wait4(pid, nil, 0, nil); err != unix.EINTR {
				break
			}
		}
	}()
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	var maps strings.Builder
	for _, e := range m {
		fmt.Fprintf(&maps, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	for _, w := range []struct{ file, data string }{{"uid_map", maps.String()}, {"setgroups", "deny"}, {"gid_map", maps.String()}} {
		if err := os.WriteFile(proc+w.file, []byte(w.data), 0); err != nil {
			return nil, fmt.Errorf("creating a user namespace for %s: writing %s: %w", r, w.file, err)
		}
	}
	f, err := os.Open(proc + "ns/user")
	if err != nil {
		return nil, fmt.Errorf("opening the user namespace for %s: %w", r, err)
	}
	return &Namespace{f: f}, nil
}

// Close releases the namespace.
func (n *Namespace) Close() error { return n.f.Close() }

// IdmapBind mounts src at dst (an existing directory or file) through an
// idmapped mount: files owned by ID n on disk appear owned by the host ID
// that n maps to in the namespace. Only src's own mount is cloned, not the
// mounts below it.
func (n *Namespace) IdmapBind(src, dst string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cloning mount %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(n.f.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("idmapping %s: %w (%w)", src, ErrNotIdmappable, err)
		}
		return fmt.Errorf("idmapping %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting idmapped %s at %s: %w", src, dst, err)
	}
	return nil
}

// MountInfo is the part of a /proc/self/mountinfo line ward reads.
type MountInfo struct {
	Mountpoint string
	FSType     string
	// Super are the superblock options (lowerdir=..., upperdir=...).
	Super string
}

// MountAt returns the topmost mount whose mount point is exactly p, and
// false when p is not a mount point.
func MountAt(p string) (MountInfo, bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return MountInfo{}, false, fmt.Errorf("reading mountinfo: %w", err)
	}
	var found MountInfo
	ok := false
	for _, line := range strings.Split(string(data), "\n") {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		pre, post, cut := strings.Cut(line, " - ")
		if !cut {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		if unescape(f[4]) != p {
			continue
		}
		// Later lines are mounted on top of earlier ones.
		found, ok = MountInfo{Mountpoint: p, FSType: g[0], Super: g[2]}, true
	}
	return found, ok, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Overlay is an overlay mount's layers.
type Overlay struct {
	Lower []string
	Upper string
	Work  string
}

// ParseOverlay reads lowerdir, upperdir and workdir from an overlay's
// superblock options. Options with escaped commas or colons in paths
// are refused rather than misread.
func ParseOverlay(super string) (Overlay, error) {
	var o Overlay
	if strings.Contains(super, `\`) {
		return o, fmt.Errorf("overlay options with escaped characters are not supported: %q", super)
	}
	for _, opt := range strings.Split(super, ",") {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "lowerdir":
			o.Lower = strings.Split(v, ":")
		case "upperdir":
			o.Upper = v
		case "workdir":
			o.Work = v
		}
	}
	if len(o.Lower) == 0 {
		return o, fmt.Errorf("overlay without lowerdir: %q", super)
	}
	for _, d := range []string{o.Upper, o.Work} {
		if d != "" && !filepath.IsAbs(d) {
			return o, fmt.Errorf("overlay layer %q is not an absolute path", d)
		}
	}
	return o, nil
}

// SetNetSysctls writes net.* sysctls in the network namespace at netns,
// for a container whose user namespace may not (see harden's userns step).
// It runs on a thread of its own that enters the namespace and is thrown
// away afterwards, so no other goroutine ever runs in it.
func SetNetSysctls(netns string, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	for k := range kv {
		if !strings.HasPrefix(k, "net.") || strings.Contains(k, "/") || strings.Contains(k, "..") {
			return fmt.Errorf("sysctl %q is not a network namespace's", k)
		}
	}
	ns, err := os.Open(netns)
	if err != nil {
		return fmt.Errorf("opening network namespace: %w", err)
	}
	defer ns.Close()
	if err := notHostNetns(ns, netns); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, still in
		// the pod's namespace, rather than return to the scheduler.
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("entering network namespace %s: %w", netns, err)
			return
		}
		for k, v := range kv {
			p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := os.WriteFile(p, []byte(v), 0); err != nil {
				done <- fmt.Errorf("setting %s in %s: %w", k, netns, err)
				return
			}
		}
		done <- nil
	}()
	return <-done
}

// notHostNetns refuses a namespace that is ward's own (a front door runs
// in the node's network namespace) or PID 1's, under whatever path the
// spec named it: ward never changes the node's settings for a container.
// PID 1's may be out of reach (a shim without ptrace access to it); ward's
// own never is.
func notHostNetns(ns *os.File, name string) error {
	var got unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &got); err != nil {
		return fmt.Errorf("inspecting network namespace %s: %w", name, err)
	}
	for _, host := range []string{"/proc/self/ns/net", "/proc/1/ns/net"} {
		var st unix.Stat_t
		if err := unix.Stat(host, &st); err != nil {
			if host == "/proc/self/ns/net" {
				return fmt.Errorf("inspecting %s: %w", host, err)
			}
			continue
		}
		if st.Dev == got.Dev && st.Ino == got.Ino {
			return fmt.Errorf("network namespace %s is the host's (%s): refusing to set sysctls in it", name, host)
		}
	}
	return nil
}

// ApplyMovedNetSysctls sets in s's network namespace the net.* sysctls
// that before (the spec's sysctls as the manager wrote them) has and s no
// longer has: the ones the userns step took out of the spec. A container
// in the host's network namespace never gets them: ward does not change
// host settings for a container.
func ApplyMovedNetSysctls(before map[string]string, s *specs.Spec) error {
	moved := map[string]string{}
	for k, v := range before {
		if _, kept := s.Linux.Sysctl[k]; !kept && strings.HasPrefix(k, "net.") {
			moved[k] = v
		}
	}
	if len(moved) == 0 {
		return nil
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path != "" {
			return SetNetSysctls(ns.Path, moved)
		}
	}
	return fmt.Errorf("net.* sysctls for a container without a network namespace of its own path: refusing to set them on the host")
}
