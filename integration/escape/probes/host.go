package probes

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/landlock"
)

func rootIsHostRoot(Env) (Result, string) {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return Reachable, "cannot read uid_map: " + err.Error()
	}
	f := strings.Fields(string(data))
	if len(f) >= 3 && f[0] == "0" && f[1] == "0" {
		if os.Geteuid() == 0 {
			return Reachable, "uid 0 maps to host uid 0: an escape lands as host root"
		}
		return Reachable, fmt.Sprintf("no user namespace (uid %d is host uid %d)", os.Geteuid(), os.Geteuid())
	}
	if len(f) >= 3 {
		return Blocked, "user namespace: container uid " + f[0] + " is host uid " + f[1]
	}
	return Reachable, "empty uid_map"
}

func hostPID(Env) (Result, string) {
	// kthreadd is PID 2 in the host's PID namespace and nowhere else.
	comm, err := os.ReadFile("/proc/2/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "kthreadd" {
		return Blocked, "host processes not visible"
	}
	// Signal 0 checks permission and delivers nothing.
	if err := unix.Kill(2, 0); err == nil {
		return Escaped, "host kthreadd (pid 2) visible and signalable"
	}
	return Reachable, "host processes visible (kthreadd is pid 2), not signalable"
}

func runtimeSocketPaths() []string {
	return []string{
		"/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
		"/var/run/containerd/containerd.sock", "/run/crio/crio.sock", "/run/cri-dockerd.sock",
		"/run/podman/podman.sock", "/run/k3s/containerd/containerd.sock",
	}
}

func runtimeSocket(Env) (Result, string) {
	candidates := runtimeSocketPaths()
	// Sockets bind-mounted elsewhere show up as mount points.
	for _, m := range mounts() {
		// ward's supervisor socket is not a runtime's API: it takes one
		// seccomp listener from ward-init, checked by the kernel's peer
		// credentials and by the fd's kind (internal/supervisor), and
		// answers nothing else; the detection tests check that.
		if strings.HasSuffix(m.point, ".sock") && m.point != landlock.SupervisorPath {
			candidates = append(candidates, m.point)
		}
	}
	seen := ""
	for _, p := range candidates {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		c, err := net.Dial("unix", p)
		if err == nil {
			c.Close()
			return Escaped, "connected to " + p
		}
		seen = p + " (" + err.Error() + ")"
	}
	if seen != "" {
		return Reachable, "socket present but refused: " + seen
	}
	return Blocked, "no runtime socket"
}

// mount is a line of /proc/self/mountinfo.
type mount struct {
	root, point, fstype, source string
	options                     string
}

func mounts() []mount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 6 || len(b) < 2 {
			continue
		}
		out = append(out, mount{root: a[3], point: a[4], options: a[5], fstype: b[0], source: b[1]})
	}
	return out
}

// hostFSWritable looks for the harness's marker file through every mount:
// a bind of the host's root (or of a directory above the marker) shows it
// at the mount point plus the marker's path below the mount's source. The
// content tells the host's file from a same-named one of the container.
func hostFSWritable(env Env) (Result, string) {
	if env.Marker == "" {
		return Reachable, "no marker given by the harness; cannot tell"
	}
	for _, m := range mounts() {
		for _, p := range markerCandidates(m, env.Marker) {
			data, err := os.ReadFile(p)
			if err != nil || string(data) != MarkerContent {
				continue
			}
			// Opened for writing, closed without a byte written.
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				f.Close()
				return Escaped, "host marker writable at " + p
			}
			return Reachable, "host marker visible read-only at " + p + " (" + err.Error() + ")"
		}
	}
	return Blocked, "host filesystem not mounted"
}

// markerCandidates are the places the host file marker would appear under
// mount m: below the mount point as the marker's full path (a bind of the
// host's /), or its path relative to the mount's root within its
// filesystem.
func markerCandidates(m mount, marker string) []string {
	out := []string{filepath.Join(m.point, marker)}
	root := strings.TrimSuffix(m.root, "/")
	if root != "" && (marker == root || strings.HasPrefix(marker, root+"/")) {
		out = append(out, filepath.Join(m.point, strings.TrimPrefix(marker, root)))
	}
	return out
}

func mountProbe(Env) (Result, string) {
	dir, err := os.MkdirTemp("", "ward-probe-mnt")
	if err != nil {
		return Reachable, "no temp dir: " + err.Error()
	}
	defer os.Remove(dir)
	if err := unix.Mount("ward-probe", dir, "tmpfs", 0, "size=4k"); err != nil {
		return syscallVerdict("mount tmpfs", err)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return Reachable, "mounted tmpfs; unmount failed: " + err.Error()
	}
	return Reachable, "mounted and unmounted a tmpfs"
}

func releaseAgent(Env) (Result, string) {
	for _, m := range mounts() {
		if m.fstype != "cgroup" {
			continue
		}
		p := filepath.Join(m.point, "release_agent")
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Close()
			return Escaped, p + " opened for writing"
		}
	}
	// Without a visible v1 hierarchy, an attacker mounts one. A named
	// hierarchy with no controller binds none of the host's controllers,
	// and, having no child cgroup, is destroyed when unmounted.
	dir, err := os.MkdirTemp("", "ward-probe-cg")
	if err != nil {
		return Reachable, "no temp dir: " + err.Error()
	}
	defer os.Remove(dir)
	if err := unix.Mount("ward-probe", dir, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "none,name=ward-probe"); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS) {
			return Blocked, "no writable v1 release_agent; mounting cgroup v1: " + err.Error()
		}
		return Blocked, "no writable v1 release_agent; mounting cgroup v1 failed: " + err.Error()
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	p := filepath.Join(dir, "release_agent")
	if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
		f.Close()
		return Escaped, "mounted a cgroup v1 hierarchy; its release_agent opened for writing (nothing written)"
	}
	return Reachable, "mounted a cgroup v1 hierarchy; release_agent not writable"
}

// openForWrite opens path for writing and closes it without writing.
func openForWrite(path string, success Result) func(Env) (Result, string) {
	return func(Env) (Result, string) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
			return success, path + " opened for writing (nothing written)"
		}
		if errors.Is(err, os.ErrNotExist) {
			return Blocked, path + " does not exist here"
		}
		return Blocked, err.Error()
	}
}

// openForRead opens path for reading; a masked path is /dev/null or an
// empty directory, which counts as blocked.
func openForRead(path string) func(Env) (Result, string) {
	return func(Env) (Result, string) {
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Blocked, path + " does not exist here"
			}
			return Blocked, err.Error()
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3 {
			return Blocked, path + " is masked (/dev/null)"
		}
		buf := make([]byte, 1)
		if _, err := f.Read(buf); err != nil {
			return Reachable, path + " opened, read failed: " + err.Error()
		}
		return Escaped, path + " readable"
	}
}

func cgroupfsWritable(Env) (Result, string) {
	for _, m := range mounts() {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		for _, name := range []string{"cgroup.procs", "tasks"} {
			p := filepath.Join(m.point, name)
			if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				f.Close()
				return Reachable, p + " opened for writing"
			}
		}
	}
	return Blocked, "no writable cgroup file"
}

func kallsyms(Env) (Result, string) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return Blocked, err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return Blocked, "empty"
	}
	addr := strings.Fields(sc.Text())
	if len(addr) > 0 && strings.Trim(addr[0], "0") != "" {
		return Reachable, "kernel addresses visible (KASLR defeated)"
	}
	return Blocked, "addresses hidden (kptr_restrict)"
}

func mknodBlock(Env) (Result, string) {
	major, minor, ok := firstDisk()
	if !ok {
		return Blocked, "no block device listed in /proc/partitions"
	}
	dir, err := os.MkdirTemp("", "ward-probe-dev")
	if err != nil {
		return Reachable, "no temp dir: " + err.Error()
	}
	defer os.RemoveAll(dir)
	node := filepath.Join(dir, "disk")
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		return syscallVerdict("mknod block device", err)
	}
	f, err := os.OpenFile(node, os.O_RDONLY, 0)
	if err != nil {
		return Blocked, fmt.Sprintf("mknod %d:%d succeeded, open refused (device cgroup): %v", major, minor, err)
	}
	f.Close()
	return Escaped, fmt.Sprintf("host disk %d:%d opened through mknod", major, minor)
}

// firstDisk reads the first whole disk of /proc/partitions, which is not
// namespaced and lists the host's disks.
func firstDisk() (uint32, uint32, bool) {
	data, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		ma, err1 := strconv.Atoi(f[0])
		mi, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			return uint32(ma), uint32(mi), true
		}
	}
	return 0, 0, false
}

func setuidEscalation(env Env) (Result, string) {
	if os.Geteuid() == 0 {
		return Blocked, "runs as root already; the shape with a non-root user tests this"
	}
	// The harness ships a setuid-root copy of the probe beside it.
	suid := env.Self + "-suid"
	fi, err := os.Stat(suid)
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		return Blocked, "no setuid binary in the image"
	}
	out, err := exec.Command(suid, "euid").Output()
	if err != nil {
		return Blocked, "setuid binary failed: " + err.Error()
	}
	if strings.TrimSpace(string(out)) == "0" {
		return Reachable, "a setuid-root binary ran with euid 0"
	}
	return Blocked, "setuid bit ignored (no_new_privs): euid " + strings.TrimSpace(string(out))
}

// driftDirs are where a workload would drop a downloaded binary, the
// process's temporary directory first (on a host run, the test's own).
func driftDirs() []string {
	var out []string
	for _, d := range []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm", "/run", "/"} {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// drift copies the probe to the first writable place and tries to run the
// copy; each copy has a fresh name and is removed at once.
func drift(env Env) (Result, string) {
	src, err := os.ReadFile(env.Self)
	if err != nil {
		return Reachable, "cannot read own binary: " + err.Error()
	}
	var refused []string
	for _, dir := range driftDirs() {
		f, err := os.CreateTemp(dir, ".ward-probe-drift-")
		if err != nil {
			continue
		}
		p := f.Name()
		_, werr := f.Write(src)
		cerr := f.Close()
		if werr != nil || cerr != nil || os.Chmod(p, 0o755) != nil {
			os.Remove(p)
			continue
		}
		out, err := exec.Command(p, "euid").Output()
		os.Remove(p)
		if err == nil && len(out) > 0 {
			return Reachable, "wrote and executed " + p
		}
		refused = append(refused, p+": "+errString(err))
	}
	if len(refused) == 0 {
		return Blocked, "no writable place"
	}
	return Blocked, "written but not executable: " + strings.Join(refused, "; ")
}

func errString(err error) string {
	if err == nil {
		return "no output"
	}
	return err.Error()
}

func abstractSocket(env Env) (Result, string) {
	names := map[string]bool{}
	if env.Abstract != "" {
		names[env.Abstract] = true
	}
	if data, err := os.ReadFile("/proc/net/unix"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 8 && strings.HasPrefix(f[7], "@") && strings.Contains(f[7], "containerd-shim") {
				names[f[7][1:]] = true
			}
		}
	}
	for name := range names {
		c, err := net.Dial("unix", "@"+name)
		if err == nil {
			c.Close()
			return Escaped, "connected to abstract socket @" + name
		}
	}
	if len(names) == 0 {
		return Blocked, "no host abstract socket visible"
	}
	return Blocked, "abstract sockets not connectable"
}

func leakedFD(Env) (Result, string) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return Reachable, err.Error()
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if _, err := os.Stat(target); err != nil {
			// A directory this container cannot name is someone else's.
			return Escaped, fmt.Sprintf("fd %d is a directory outside the container (%s)", fd, target)
		}
	}
	cwd, err := os.Readlink("/proc/self/cwd")
	if err != nil || !strings.HasPrefix(cwd, "/") {
		return Escaped, "working directory is outside the container: " + cwd
	}
	return Blocked, "no inherited directory descriptors"
}
