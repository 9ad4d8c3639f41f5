package doctor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/sensor"
)

// HostKernel probes the running kernel. The probes change nothing: the
// idmap probe builds a detached mount and closes it without attaching it.
type HostKernel struct{}

// NewHostKernel returns the running kernel's probes (off Linux, a
// *nodeonly.Error: `ward doctor` checks a node).
func NewHostKernel() (Kernel, error) { return HostKernel{}, nil }

// LandlockABI asks the kernel for its Landlock ABI version.
func (HostKernel) LandlockABI() (int, error) {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	return int(v), nil
}

// IdmapSupported clones dir as a detached mount and tries to idmap it with
// a throwaway user namespace, which is exactly what a runtime does for an
// idmapped bind mount.
func (HostKernel) IdmapSupported(dir string) error {
	// A short-lived child in a new user namespace provides the mapping; it
	// only has to exist while its namespace is opened, so it blocks reading
	// stdin until the probe is done.
	cmd := exec.Command("/bin/sh", "-c", "read x")
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		Pdeathsig:   unix.SIGKILL,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting a process in a new user namespace: %w", err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return fmt.Errorf("opening the probe's user namespace: %w", err)
	}
	defer ns.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", dir, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("the filesystem of %s cannot be idmapped: %w", dir, err)
		}
		return fmt.Errorf("mount_setattr MOUNT_ATTR_IDMAP on %s: %w", dir, err)
	}
	return nil
}

// Sensor loads and unloads ward's eBPF sensor, without mounting tracefs.
func (HostKernel) Sensor() (lsm, err error) {
	s, err := sensor.Load(sensor.Options{})
	if err != nil {
		return nil, err
	}
	lsm = s.LSM
	return lsm, s.Close()
}

// PinnedSensors lists the sensors pinned under sensor.PinRoot.
func (HostKernel) PinnedSensors() ([]sensor.Pinned, error) { return sensor.ListPinned() }

// CgroupVersion looks at what is mounted on /sys/fs/cgroup.
func (HostKernel) CgroupVersion() (int, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return 0, fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return 2, nil
	}
	return 1, nil
}
