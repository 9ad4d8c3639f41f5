package harden

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/capability"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/policy"
)

// errProcFDCwd is returned for a working directory under /proc/<pid>/fd.
var errProcFDCwd = errors.New("process.cwd is under /proc/<pid>/fd, the CVE-2024-21626 escape shape; refusing to run it")

// refuseProcFDCwd cannot be fixed by rewriting (the workload asked for that
// directory), so it refuses. The policy normally rejects the shape first;
// this step keeps the refusal when a policy forgets to.
func refuseProcFDCwd(s *specs.Spec, _ *Record) error {
	if s.Process != nil && policy.IsProcFD(s.Process.Cwd) {
		return errProcFDCwd
	}
	return nil
}

func capabilitiesStep(allow []string) func(*specs.Spec, *Record) error {
	allowed := capability.SetOf(allow)
	return func(s *specs.Spec, rec *Record) error {
		if s.Process == nil || s.Process.Capabilities == nil {
			return nil
		}
		c := s.Process.Capabilities
		var dropped capability.Set
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient} {
			before := capability.SetOf(*set)
			if before&^allowed == 0 {
				continue
			}
			dropped |= before &^ allowed
			// A new slice, not slices.DeleteFunc: the sets of one spec
			// may share a backing array, and compacting one in place
			// would corrupt the others.
			kept := make([]string, 0, len(*set))
			for _, name := range *set {
				if allowed.Has(name) {
					kept = append(kept, name)
				}
			}
			*set = kept
		}
		if dropped != 0 {
			rec.Add("process.capabilities", "dropped "+strings.Join(dropped.Names(), ", "))
		}
		return nil
	}
}

func noNewPrivileges(s *specs.Spec, rec *Record) error {
	if s.Process != nil && !s.Process.NoNewPrivileges {
		s.Process.NoNewPrivileges = true
		rec.Add("process.noNewPrivileges", "set to true")
	}
	return nil
}

// MaskedPaths is what ward masks: the union of runc's and containerd's
// defaults. Masking a path that does not exist is a no-op for runc.
func MaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
}

// ReadonlyPaths is what ward mounts read-only.
func ReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

func maskedPathsStep(want []string) func(*specs.Spec, *Record) error {
	return func(s *specs.Spec, rec *Record) error {
		l := linux(s)
		if added := addMissing(&l.MaskedPaths, want); added != "" {
			rec.Add("linux.maskedPaths", "added "+added)
		}
		return nil
	}
}

func readonlyPathsStep(want []string) func(*specs.Spec, *Record) error {
	return func(s *specs.Spec, rec *Record) error {
		l := linux(s)
		if added := addMissing(&l.ReadonlyPaths, want); added != "" {
			rec.Add("linux.readonlyPaths", "added "+added)
		}
		return nil
	}
}

// addMissing appends the entries of want that list lacks and returns them,
// comma-separated.
func addMissing(list *[]string, want []string) string {
	var added []string
	// Clip so that appending copies instead of writing into an array the
	// list may share with another.
	*list = slices.Clip(*list)
	for _, w := range want {
		if !slices.Contains(*list, w) {
			*list = append(*list, w)
			added = append(added, w)
		}
	}
	return strings.Join(added, ", ")
}

// sysfsReadonly remounts sysfs and the cgroup filesystem read-only: both are
// how a container writes host kernel and cgroup settings (release_agent).
func sysfsReadonly(s *specs.Spec, rec *Record) error {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if m.Type != "sysfs" && m.Type != "cgroup" && m.Type != "cgroup2" {
			continue
		}
		if slices.Contains(m.Options, "ro") {
			continue
		}
		opts := make([]string, 0, len(m.Options)+1)
		for _, o := range m.Options {
			if o != "rw" {
				opts = append(opts, o)
			}
		}
		m.Options = append(opts, "ro")
		rec.Add("mounts["+strconv.Itoa(i)+"].options", m.Type+" at "+m.Destination+" made read-only")
	}
	return nil
}

func seccompStep(src SeccompSource, filters FilterSource, supervisor string) func(*specs.Spec, *Record) error {
	return func(s *specs.Spec, rec *Record) error {
		if filters != nil && Launched(s) {
			return launcherSeccomp(s, rec, filters, supervisor)
		}
		l := linux(s)
		var what string
		switch {
		case l.Seccomp == nil:
			what = "injected ward's profile (there was none)"
		case profiles.IsUnconfined(l.Seccomp):
			what = "replaced an empty profile with ward's"
		case profiles.IsDefaultAllow(l.Seccomp):
			what = "replaced a default-allow profile with ward's"
		default:
			return nil
		}
		prof, err := src.Profile(bounding(s))
		if err != nil {
			return err
		}
		l.Seccomp = prof
		if st, ok := src.(standin); ok {
			what += "; " + st.Standin()
		}
		rec.Add("linux.seccomp", what)
		return nil
	}
}

// standin is a SeccompSource whose profile only previews ward's
// (profiles.SeccompPreview): the change it makes says so.
type standin interface{ Standin() string }

func bounding(s *specs.Spec) []string {
	if s.Process != nil && s.Process.Capabilities != nil {
		return s.Process.Capabilities.Bounding
	}
	return nil
}

// Launched reports whether the container's process runs under ward-init
// with ward's directory mounted (the Landlock step ran). Its exec sessions
// must then run under ward-init too (ApplyProcess).
func Launched(s *specs.Spec) bool {
	if s.Process == nil || len(s.Process.Args) == 0 || s.Process.Args[0] != landlock.LauncherPath {
		return false
	}
	return slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool {
		return path.Clean(m.Destination) == landlock.Dir && m.Type == "tmpfs"
	})
}

// launcherSeccomp hands ward's baseline to ward-init: the compiled filter
// is bind-mounted read-only from the host (the workload cannot change it,
// and exec sessions read the same file). The container's own profile, if
// it has one, is compiled too, composed with the baseline (so that its
// refusals do not hide escape attempts from ward's supervisor) and
// mounted beside it, and runc is left no seccomp work; a profile ward's
// compiler does not take (seccompbpf.ErrUnsupported: a listener, notify
// rules, other architectures) stays in linux.seccomp for runc, under
// which ward-init stacks the baseline. Either way the kernel runs both
// and the strictest answer wins: a workload's profile is kept, never
// replaced.
func launcherSeccomp(s *specs.Spec, rec *Record, filters FilterSource, supervisor string) error {
	host, err := filters.Filter(bounding(s))
	if err != nil {
		return err
	}
	ro := []string{"bind", "ro", "nosuid", "nodev", "noexec"}
	want := specs.Mount{Destination: landlock.SeccompPath, Type: "bind", Source: host, Options: ro}
	// A socket is reached on a read-only mount: connect(2) checks the
	// socket's own permissions, not the mount's.
	sock := specs.Mount{Destination: landlock.SupervisorPath, Type: "bind", Source: supervisor, Options: ro}
	// Only ward's own mounts may be there, once, after ward's directory:
	// whoever controls those files controls the filter and who answers it.
	dirAt, have, haveSock, own := -1, false, false, -1
	for i, m := range s.Mounts {
		dst := path.Clean(m.Destination)
		switch {
		case dst == landlock.Dir && m.Type == "tmpfs":
			dirAt = i
		case dst == landlock.SeccompPath && !have && dirAt >= 0 && sameMount(m, want):
			have = true
		case dst == landlock.SeccompPath:
			return fmt.Errorf("mounts[%d]: %s is reserved for ward's seccomp filter", i, m.Destination)
		case dst == landlock.ProfileSeccompPath && own < 0 && have:
			own = i // checked below, against the profile's filter
		case dst == landlock.ProfileSeccompPath:
			return fmt.Errorf("mounts[%d]: %s is reserved for the container's compiled seccomp profile", i, m.Destination)
		case dst == landlock.SupervisorPath && supervisor != "" && !haveSock && dirAt >= 0 && sameMount(m, sock):
			haveSock = true
		case dst == landlock.SupervisorPath:
			return fmt.Errorf("mounts[%d]: %s is reserved for ward's supervisor", i, m.Destination)
		}
	}
	if !have {
		s.Mounts = append(slices.Clip(s.Mounts), want)
		rec.Add("mounts", "added ward's compiled seccomp filter at "+landlock.SeccompPath+" (read-only bind of "+host+"); ward-init installs it before the workload's first instruction")
	}
	if supervisor != "" && !haveSock {
		s.Mounts = append(slices.Clip(s.Mounts), sock)
		rec.Add("mounts", "added ward's supervisor socket at "+landlock.SupervisorPath+" (bind of "+supervisor+"); the baseline's refusals of escape system calls are answered there and raise alerts")
	}
	l := linux(s)
	switch {
	case own >= 0:
		// A re-run: the profile was moved to ward-init's file already,
		// and nothing may have put one back for runc.
		if l.Seccomp != nil || !strings.HasPrefix(s.Mounts[own].Source, path.Dir(host)+"/") ||
			!sameMount(s.Mounts[own], specs.Mount{Destination: landlock.ProfileSeccompPath, Type: "bind", Source: s.Mounts[own].Source, Options: ro}) {
			return fmt.Errorf("mounts[%d]: %s is reserved for the container's compiled seccomp profile", own, landlock.ProfileSeccompPath)
		}
	case l.Seccomp == nil:
	case profiles.IsUnconfined(l.Seccomp):
		l.Seccomp = nil
		rec.Add("linux.seccomp", "removed an empty profile: ward-init installs ward's baseline instead")
	default:
		file, err := filters.Workload(l.Seccomp, host)
		switch {
		case errors.Is(err, seccompbpf.ErrUnsupported):
			// Only the first application records it; a re-run sees the mount.
			if !have {
				rec.Add("linux.seccomp", "kept the container's own profile for runc ("+err.Error()+"); ward-init stacks ward's baseline on it")
			}
			return nil
		case err != nil:
			return err
		}
		l.Seccomp = nil
		s.Mounts = append(slices.Clip(s.Mounts), specs.Mount{Destination: landlock.ProfileSeccompPath, Type: "bind", Source: file, Options: ro})
		why := ""
		if supervisor != "" {
			why = ", composed with ward's baseline so that its refusals of escape system calls reach ward's supervisor, which answers them as the profile does"
		}
		rec.Add("linux.seccomp", "compiled the container's own profile (read-only bind of "+file+" at "+landlock.ProfileSeccompPath+")"+why+
			"; ward-init installs it, runc does no seccomp work")
	}
	return nil
}

func linux(s *specs.Spec) *specs.Linux {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s.Linux
}
