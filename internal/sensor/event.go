//go:build linux

package sensor

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is what the program saw; bpf/sensor.bpf.c's enum kind.
type Kind uint32

const (
	// KindWrite: a sensitive file opened for writing.
	KindWrite Kind = 1
	// KindWriteFailed: an open for writing that failed; only the path
	// string given to open is known.
	KindWriteFailed Kind = 2
	// KindDevice: a host device opened.
	KindDevice Kind = 3
	// KindExecWritten: a file written in the container, executed.
	KindExecWritten Kind = 4
)

// Target is what an event is about, the unit alerts are made of.
type Target string

const (
	ReleaseAgent    Target = "release_agent"
	NotifyOnRelease Target = "notify_on_release"
	CorePattern     Target = "core_pattern"
	SysrqTrigger    Target = "sysrq_trigger"
	ProcSys         Target = "proc_sys"
	UeventHelper    Target = "uevent_helper"
	HostDevice      Target = "host_device"
	Drift           Target = "drift"
)

// Event is one thing a watched container did.
type Event struct {
	Target Target
	Kind   Kind
	// Failed is true for an attempt the kernel refused (Errno says why):
	// the file was not written.
	Failed bool
	Errno  unix.Errno
	// Cgroup is the watched cgroup's ID (Watch) the process is in or below.
	Cgroup uint64
	// Pid and Tid are the process and thread, in the node's PID namespace.
	Pid, Tid uint32
	// MntNS is the process's mount namespace (its inode number).
	MntNS uint32
	// Comm is the thread's name.
	Comm string
	// Path is the file: for a procfs or sysfs file its path as seen at
	// /proc or /sys (/proc/sys/kernel/core_pattern), for a cgroup file its
	// path inside its hierarchy, for a failed attempt or an executed file
	// the string the process gave.
	Path string
	// Opened is the path string the process gave to open ("" for exec).
	Opened string
	// FS names the file's filesystem: "proc", "sysfs", "cgroup", or "" for
	// any other.
	FS string
	// Flags are the open's flags.
	Flags uint32
	// Dev and Ino identify the file; Rdev is a device file's device.
	Dev, Rdev uint32
	Ino       uint64
	// Mode is the file's type and permissions.
	Mode uint32
	// File is an executed file's path inside its filesystem (from its
	// dentries: /tmp/a on the root overlay, /a on a tmpfs at /tmp): the
	// file the program runs from, which Path (the name given to execve)
	// may not be when a script's interpreter is the dropped file.
	File string
	// Writer is the name of the executable that wrote an executed file
	// (the first that was not the image's toolchain, if any), and
	// WriterFlags its provenance (WriterImage, WriterToolchain).
	Writer      string
	WriterFlags uint32
}

// BuildArtefact says whether an executed written file was written only
// by the image's own toolchain (Toolchain): a build job running what it
// built, not a dropped binary.
func (e Event) BuildArtefact() bool {
	return e.Kind == KindExecWritten && e.WriterFlags&WriterToolchain != 0
}

const (
	procMagic   = 0x9fa0
	cgroupMagic = 0x27e0eb
	sysfsMagic  = 0x62656572
)

// Major and Minor split a kernel device number (the kernel's own encoding,
// 12 and 20 bits, as the program reads it).
func Major(dev uint32) uint32 { return dev >> 20 }
func Minor(dev uint32) uint32 { return dev & (1<<20 - 1) }

// decode turns the program's record into an Event, false when it is
// nothing the sensor reports (a failed open for writing of an ordinary
// file).
func decode(r *sensorEvent) (Event, bool) {
	e := Event{
		Kind: Kind(r.Kind), Cgroup: r.Cgroup, Pid: r.Pid, Tid: r.Tid, MntNS: r.Mntns,
		Comm: cstr(r.Comm[:]), Opened: cstr(r.Path[:]), Flags: r.Flags,
		Dev: r.Dev, Rdev: r.Rdev, Ino: r.Ino, Mode: r.Mode,
	}
	switch r.Magic {
	case procMagic:
		e.FS = "proc"
	case sysfsMagic:
		e.FS = "sysfs"
	case cgroupMagic:
		e.FS = "cgroup"
	}
	inFS := fsPath(r.Names)
	switch e.Kind {
	case KindWrite:
		switch e.FS {
		case "proc":
			e.Path = "/proc" + inFS
			switch {
			case e.Path == "/proc/sys/kernel/core_pattern":
				e.Target = CorePattern
			case e.Path == "/proc/sysrq-trigger":
				e.Target = SysrqTrigger
			default:
				e.Target = ProcSys
			}
		case "sysfs":
			e.Path, e.Target = "/sys"+inFS, UeventHelper
		case "cgroup":
			e.Path, e.Target = inFS, ReleaseAgent
			if path.Base(inFS) == "notify_on_release" {
				e.Target = NotifyOnRelease
			}
		default:
			return e, false
		}
	case KindWriteFailed:
		e.Failed, e.Errno, e.Path = true, unix.Errno(-r.Ret), e.Opened
		t, ok := targetOf(e.Opened)
		if !ok {
			return e, false
		}
		e.Target = t
	case KindDevice:
		e.Target, e.Path = HostDevice, e.Opened
	case KindExecWritten:
		e.Target, e.Path, e.Opened = Drift, e.Opened, ""
		e.File, e.Writer, e.WriterFlags = inFS, cstr(r.Writer[:]), r.WriterFlags
	default:
		return e, false
	}
	return e, true
}

// targetOf judges a failed open by the only thing left, the string the
// process gave: by its last elements, whatever came before (a cgroup
// hierarchy can be mounted anywhere, /proc reached through /proc/self/root).
func targetOf(p string) (Target, bool) {
	c := path.Clean("/" + p)
	switch {
	case path.Base(c) == "release_agent":
		return ReleaseAgent, true
	case path.Base(c) == "notify_on_release":
		return NotifyOnRelease, true
	case strings.HasSuffix(c, "/sys/kernel/core_pattern"):
		return CorePattern, true
	case strings.HasSuffix(c, "/proc/sysrq-trigger"):
		return SysrqTrigger, true
	case strings.HasSuffix(c, "/kernel/uevent_helper"):
		return UeventHelper, true
	case strings.HasPrefix(c, "/proc/sys/") || strings.Contains(c, "/proc/sys/"):
		return ProcSys, true
	}
	return "", false
}

// fsPath joins the dentries the program collected (leaf first, ending at
// the filesystem's root "/") into a path inside the filesystem; a path
// deeper than the program walks starts with "/...".
func fsPath(names [6][32]int8) string {
	var parts []string
	reachedRoot := false
	for _, n := range names {
		s := cstr(n[:])
		if s == "" {
			break
		}
		if s == "/" {
			reachedRoot = true
			break
		}
		parts = append(parts, s)
	}
	var b strings.Builder
	if !reachedRoot {
		b.WriteString("/...")
	}
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/" + parts[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func cstr(b []int8) string {
	u := make([]byte, len(b))
	for i, c := range b {
		u[i] = byte(c)
	}
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(u)
}

// String is one line for logs.
func (e Event) String() string {
	s := fmt.Sprintf("%s: %s (pid %d %q, cgroup %d)", e.Target, e.Path, e.Pid, e.Comm, e.Cgroup)
	if e.Failed {
		s += fmt.Sprintf(", refused: %v", e.Errno)
	}
	if e.Kind == KindDevice {
		s += fmt.Sprintf(", device %d:%d", Major(e.Rdev), Minor(e.Rdev))
	}
	if e.Kind == KindExecWritten {
		s += fmt.Sprintf(", file %s written by %q (provenance %#x)", e.File, e.Writer, e.WriterFlags)
	}
	return s
}
