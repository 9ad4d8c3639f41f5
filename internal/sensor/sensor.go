//go:build linux

package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// ErrClosed is Read's error once the sensor is closed.
var ErrClosed = os.ErrClosed

// Options say how to load the sensor.
type Options struct {
	// MountTracefs mounts tracefs at /sys/kernel/tracing when no tracefs
	// is mounted (systemd mounts it at boot; some nodes do not): the
	// syscall tracepoints are found there. A node process sets it; a probe
	// (`ward doctor`) does not change the node.
	MountTracefs bool
}

// Sensor is the loaded, attached program.
type Sensor struct {
	objs   sensorObjects
	links  []link.Link
	reader *ringbuf.Reader
	// LSM is nil when a BPF-LSM program loaded and attached at Load (ward
	// could deny, not only see), else why not.
	LSM error

	closeOnce sync.Once
}

// tracepoints the open programs attach to. open and creat exist only on
// architectures that still have those syscalls (not arm64).
var openTracepoints = []struct {
	name     string
	optional bool
}{
	{"openat", false}, {"openat2", false}, {"open", true}, {"creat", true},
}

// Load loads a private copy of the program and attaches it: for a probe
// (`ward doctor`) and tests. Supervisors share one node-wide copy (Open).
func Load(opts Options) (s *Sensor, err error) {
	if err := tracefs(opts.MountTracefs); err != nil {
		return nil, err
	}
	s = &Sensor{}
	if err := loadSensorObjects(&s.objs, nil); err != nil {
		return nil, loadError(err)
	}
	if err := fillToolchain(s.objs.Toolchain); err != nil {
		s.objs.Close()
		return nil, err
	}
	// The kernel's BTF, parsed for CO-RE, is ~40 MiB of heap that
	// cilium/ebpf keeps for the next load: none follows.
	defer releaseKernelBTF()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	named, err := attach(&s.objs)
	for _, l := range named {
		s.links = append(s.links, l.Link)
	}
	if err != nil {
		return nil, err
	}
	if s.reader, err = ringbuf.NewReader(s.objs.Events); err != nil {
		return nil, fmt.Errorf("opening the sensor's ring buffer: %w", err)
	}
	s.LSM = ProbeLSM()
	return s, nil
}

// namedLink is an attached program and the name it is pinned under.
type namedLink struct {
	Name string
	link.Link
}

// attach attaches the loaded programs to their tracepoints; on error the
// links made so far are returned for the caller to close.
func attach(objs *sensorObjects) ([]namedLink, error) {
	var out []namedLink
	enter := map[string]*ebpf.Program{
		"openat": objs.EnterOpenat, "openat2": objs.EnterOpenat2,
		"open": objs.EnterOpenPlain, "creat": objs.EnterCreat,
	}
	for _, tp := range openTracepoints {
		l, err := link.Tracepoint("syscalls", "sys_enter_"+tp.name, enter[tp.name], nil)
		if errors.Is(err, os.ErrNotExist) && tp.optional {
			continue
		}
		if err != nil {
			return out, attachError("sys_enter_"+tp.name, err)
		}
		out = append(out, namedLink{"enter_" + tp.name, l})
		if l, err = link.Tracepoint("syscalls", "sys_exit_"+tp.name, objs.ExitOpen, nil); err != nil {
			return out, attachError("sys_exit_"+tp.name, err)
		}
		out = append(out, namedLink{"exit_" + tp.name, l})
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: objs.Exec, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return out, attachError("tp_btf/sched_process_exec", err)
	}
	return append(out, namedLink{"exec", l}), nil
}

// releaseKernelBTF drops cilium/ebpf's cache of the kernel's parsed BTF
// and hands the freed heap back to the kernel at once: measured, a loaded
// sensor's process held 51 MiB of anonymous memory, 42 MiB of it this
// cache, and 4.9 MiB after this (docs/sensors.md).
func releaseKernelBTF() {
	btf.FlushKernelSpec()
	debug.FreeOSMemory()
}

// loadError types what a kernel without the sensor's features answers.
func loadError(err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return &NotSupportedError{Feature: "the eBPF sensor (BTF, ring buffers, BTF tracepoints)", MinimumVersion: "5.8", Err: err}
	case errors.Is(err, unix.EPERM):
		return &NotSupportedError{Feature: "loading BPF programs (no CAP_BPF and CAP_PERFMON, or lockdown)", Err: err}
	case errors.As(err, &ve):
		return &NotSupportedError{Feature: "the eBPF sensor on this kernel's verifier", Err: err}
	}
	return fmt.Errorf("loading the eBPF sensor: %w", err)
}

func attachError(where string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, ebpf.ErrNotSupported) {
		return &NotSupportedError{Feature: "tracepoint " + where + " (CONFIG_FTRACE_SYSCALLS, tracefs)", Err: err}
	}
	return fmt.Errorf("attaching the eBPF sensor to %s: %w", where, err)
}

// tracefs makes sure a tracefs is mounted where the tracepoints are looked
// up, mounting one at /sys/kernel/tracing when asked.
func tracefs(mount bool) error {
	const tracefsMagic = 0x74726163
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == tracefsMagic {
			return nil
		}
	}
	if !mount {
		return &NotSupportedError{Feature: "syscall tracepoints (tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing)"}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return &NotSupportedError{Feature: "syscall tracepoints (mounting tracefs at /sys/kernel/tracing)", Err: err}
	}
	return nil
}

// Watch adds a container's cgroup (CgroupID) to the watched set.
func (s *Sensor) Watch(cgroup uint64) error {
	if err := s.objs.Containers.Update(cgroup, uint8(1), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watching cgroup %d: %w", cgroup, err)
	}
	return nil
}

// Unwatch removes it; an unwatched cgroup is not an error.
func (s *Sensor) Unwatch(cgroup uint64) error {
	if err := s.objs.Containers.Delete(cgroup); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatching cgroup %d: %w", cgroup, err)
	}
	return nil
}

// Read blocks until the next event; ErrClosed after Close. Records that
// report nothing (a failed open for writing of an ordinary file) are
// skipped here.
func (s *Sensor) Read() (Event, error) {
	for {
		e, ok, err := nextEvent(s.reader)
		if ok || err != nil {
			return e, err
		}
	}
}

// nextEvent reads the next event that reports something from rd; ok is
// false when rd's deadline passed first (a Sensor's reader has none; the
// shared Reader's has passed, so that it never blocks).
func nextEvent(rd *ringbuf.Reader) (_ Event, ok bool, _ error) {
	for {
		rec, err := rd.Read()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return Event{}, false, nil
		case errors.Is(err, ringbuf.ErrClosed):
			return Event{}, false, ErrClosed
		case err != nil:
			return Event{}, false, fmt.Errorf("reading the sensor's ring buffer: %w", err)
		}
		var raw sensorEvent
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &raw); err != nil {
			return Event{}, false, fmt.Errorf("decoding a sensor event: %w", err)
		}
		if e, ok := decode(&raw); ok {
			return e, true, nil
		}
	}
}

// Close detaches and unloads the program; a blocked Read returns
// ErrClosed.
func (s *Sensor) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.reader != nil {
			errs = append(errs, s.reader.Close())
		}
		for _, l := range s.links {
			errs = append(errs, l.Close())
		}
		errs = append(errs, s.objs.Close())
	})
	return errors.Join(errs...)
}

// CgroupID is the ID of the cgroup v2 directory dir (what the program
// sees as the current cgroup): its file handle, as the kernel encodes it.
func CgroupID(dir string) (uint64, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err != nil {
		return 0, fmt.Errorf("cgroup ID of %s: %w", dir, err)
	}
	// FILEID_KERNFS: cgroupfs is kernfs, whose handles are the node's ID.
	const fileIDKernfs = 0xfe
	b := h.Bytes()
	if h.Type() != fileIDKernfs || len(b) != 8 {
		return 0, fmt.Errorf("cgroup ID of %s: not a cgroup v2 directory (file handle type %#x)", dir, h.Type())
	}
	return binary.NativeEndian.Uint64(b), nil
}
