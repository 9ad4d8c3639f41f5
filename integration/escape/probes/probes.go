// Package probes holds ward's escape probes: one small, harmless test per
// known container-escape path, run inside a container to tell whether that
// path is closed (BLOCKED), present as attack surface (REACHABLE), or usable
// to act on the host (ESCAPED).
//
// Safe by construction: the probes run as root in deliberately dangerous
// containers on shared machines, so none of them changes the host. Files
// are opened for writing and closed without a byte written; system calls get
// invalid arguments that tell a permission refusal (EPERM, checked first by
// seccomp and capabilities) from the argument errors that only code past
// the permission check returns; mounts are undone at once; markers are
// created only under a temporary directory; sockets are connected to and
// closed without sending anything.
package probes

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Result is a probe's verdict.
type Result string

const (
	// Blocked: the path is closed.
	Blocked Result = "BLOCKED"
	// Reachable: the attack surface is present (a kernel interface can be
	// called, a capability is held) but the probe did not show it acting on
	// the host.
	Reachable Result = "REACHABLE"
	// Escaped: the container could act on the host through this path.
	Escaped Result = "ESCAPED"
)

// Outcome is one probe's result.
type Outcome struct {
	ID     string   `json:"id"`
	Title  string   `json:"title"`
	Result Result   `json:"result"`
	Detail string   `json:"detail"`
	Attack []string `json:"attack"`
	CVE    string   `json:"cve,omitempty"`
}

// MarkerContent is what the harness writes into the host marker file, so a
// probe that finds a file at the marker's path knows it is the host's.
const MarkerContent = "ward escape-suite host marker\n"

// Env is what the harness tells the probes about the host, through the
// container's environment.
type Env struct {
	// Marker is the host path of a file the harness created; finding it
	// writable from inside means the host filesystem is.
	Marker string
	// Abstract is the name (without '@') of an abstract unix socket the
	// harness listens on in the host's network namespace.
	Abstract string
	// Self is the path of the probe binary inside the container.
	Self string
	// GVisor is true inside a gVisor sandbox: the kernel the container's
	// system calls reach is gVisor's, not the host's.
	GVisor bool
}

// EnvFromOS reads Env from WARD_PROBE_* variables.
func EnvFromOS() Env {
	self, _ := os.Executable()
	return Env{Marker: os.Getenv("WARD_PROBE_MARKER"), Abstract: os.Getenv("WARD_PROBE_ABSTRACT"), Self: self, GVisor: inGVisor()}
}

// inGVisor reads the kernel log, which gVisor's kernel opens with its own
// name. Reading is harmless; a refusal means a real kernel guards it.
func inGVisor() bool {
	buf := make([]byte, 1<<16)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	return err == nil && n > 0 && strings.Contains(string(buf[:n]), "gVisor")
}

// Probe is one escape path.
type Probe struct {
	ID     string
	Title  string
	Attack []string
	CVE    string
	// Kernel marks probes that act through the kernel's own interfaces
	// (procfs, sysfs, cgroupfs, devices, module loading): under gVisor
	// they reach gVisor's kernel, so what would be an escape on the host's
	// kernel is attack surface there.
	Kernel bool
	// Findings are the ward findings (policy check IDs) for the spec
	// shapes that open this path: what ward's decision log shows when it
	// sees them, and what explains the probe's outcome under ward.
	Findings []string
	run      func(env Env) (Result, string)
}

// Run runs the probe, turning a panic into a REACHABLE verdict with the
// reason, so one broken probe cannot hide the others.
func (p Probe) Run(env Env) (o Outcome) {
	o = Outcome{ID: p.ID, Title: p.Title, Attack: p.Attack, CVE: p.CVE}
	defer func() {
		if r := recover(); r != nil {
			o.Result, o.Detail = Reachable, fmt.Sprintf("probe failed: %v", r)
		}
	}()
	o.Result, o.Detail = p.run(env)
	if o.Result == Escaped && p.Kernel && env.GVisor {
		o.Result, o.Detail = Reachable, "gVisor's kernel, not the host's: "+o.Detail
	}
	return o
}

// syscallVerdict turns a system call's error into a verdict: refused with
// EPERM, EACCES, ENOSYS or EOPNOTSUPP (seccomp, a missing capability, or no
// kernel support) means blocked; anything else means the kernel code behind the
// permission check was reached.
func syscallVerdict(name string, err error) (Result, string) {
	switch {
	case err == nil:
		return Reachable, name + " succeeded"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return Blocked, name + ": " + err.Error()
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return Blocked, name + ": not available (" + err.Error() + ")"
	}
	return Reachable, name + " reached the kernel: " + err.Error()
}

// All returns every probe, in report order.
func All() []Probe {
	return []Probe{
		{ID: "root-is-host-root", Title: "container root is host root", Attack: []string{"T1611"}, Findings: []string{"run-as-root", "host-user"}, run: rootIsHostRoot},
		{ID: "host-pid", Title: "host processes visible and signalable", Attack: []string{"T1611", "T1057"}, Findings: []string{"host-pid"}, run: hostPID},
		{ID: "runtime-socket", Title: "container runtime socket reachable", Attack: []string{"T1611", "T1610"}, Findings: []string{"container-socket-mount"}, run: runtimeSocket},
		{ID: "host-fs-writable", Title: "host root filesystem writable", Attack: []string{"T1611"}, Findings: []string{"sensitive-host-path-writable", "host-path-mount"}, run: hostFSWritable},
		{ID: "mount", Title: "mount(2) allowed", Attack: []string{"T1611"}, Findings: []string{"cap-sys-admin", "seccomp-unconfined"}, run: mountProbe},
		{ID: "cgroup-release-agent", Kernel: true, Title: "cgroup v1 release_agent writable", Attack: []string{"T1611"}, CVE: "CVE-2022-0492", Findings: []string{"privileged", "cap-sys-admin", "cgroupfs-writable", "sensitive-host-path-writable"}, run: releaseAgent},
		{ID: "core-pattern", Kernel: true, Title: "/proc/sys/kernel/core_pattern writable", Attack: []string{"T1611"}, Findings: []string{"privileged", "readonly-paths-emptied"}, run: openForWrite("/proc/sys/kernel/core_pattern", Escaped)},
		{ID: "sysrq-trigger", Kernel: true, Title: "/proc/sysrq-trigger writable", Attack: []string{"T1529"}, Findings: []string{"privileged", "readonly-paths-emptied"}, run: openForWrite("/proc/sysrq-trigger", Escaped)},
		{ID: "proc-sys-writable", Kernel: true, Title: "global /proc/sys settings writable", Attack: []string{"T1611", "T1562.001"}, Findings: []string{"privileged", "readonly-paths-emptied"}, run: openForWrite("/proc/sys/vm/overcommit_memory", Escaped)},
		{ID: "sysfs-writable", Kernel: true, Title: "host /sys settings writable", Attack: []string{"T1611"}, Findings: []string{"privileged", "sysfs-writable", "sensitive-host-path-writable"}, run: openForWrite("/sys/kernel/mm/transparent_hugepage/enabled", Escaped)},
		{ID: "cgroupfs-writable", Kernel: true, Title: "cgroup filesystem writable", Attack: []string{"T1611"}, CVE: "CVE-2022-0492", Findings: []string{"privileged", "cgroupfs-writable", "sensitive-host-path-writable"}, run: cgroupfsWritable},
		{ID: "kcore", Kernel: true, Title: "/proc/kcore readable", Attack: []string{"T1611", "T1082"}, Findings: []string{"privileged", "masked-paths-emptied"}, run: openForRead("/proc/kcore")},
		{ID: "kallsyms", Kernel: true, Title: "kernel addresses in /proc/kallsyms", Attack: []string{"T1082"}, Findings: []string{"privileged", "cap-syslog"}, run: kallsyms},
		{ID: "dev-mem", Kernel: true, Title: "/dev/mem readable", Attack: []string{"T1611"}, Findings: []string{"privileged", "host-devices", "cap-sys-rawio"}, run: openForRead("/dev/mem")},
		{ID: "mknod-block", Kernel: true, Title: "host block device via mknod", Attack: []string{"T1611"}, Findings: []string{"privileged", "device-cgroup-allow-all", "host-devices"}, run: mknodBlock},
		{ID: "open-by-handle", Title: "open_by_handle_at (shocker)", Attack: []string{"T1611"}, Findings: []string{"cap-dac-read-search", "seccomp-unconfined"}, run: openByHandle},
		{ID: "kernel-module", Kernel: true, Title: "kernel module loading", Attack: []string{"T1611", "T1014"}, Findings: []string{"privileged", "cap-sys-module"}, run: kernelModule},
		{ID: "kexec", Kernel: true, Title: "kexec_load", Attack: []string{"T1529", "T1611"}, Findings: []string{"privileged", "cap-sys-boot"}, run: kexec},
		{ID: "bpf", Title: "bpf(2)", Attack: []string{"T1611", "T1014"}, Findings: []string{"cap-bpf", "cap-sys-admin", "seccomp-unconfined"}, run: bpfProbe},
		{ID: "userns-unshare", Title: "new user namespace", Attack: []string{"T1611", "T1068"}, Findings: []string{"seccomp-unconfined"}, run: usernsUnshare},
		{ID: "keyctl", Title: "kernel keyring (keyctl)", Attack: []string{"T1552"}, Findings: []string{"seccomp-unconfined"}, run: keyctlProbe},
		{ID: "perf-event-open", Title: "perf_event_open", Attack: []string{"T1068"}, Findings: []string{"cap-perfmon", "seccomp-unconfined"}, run: perfEventOpen},
		{ID: "userfaultfd", Title: "userfaultfd", Attack: []string{"T1068"}, Findings: []string{"seccomp-unconfined"}, run: userfaultfd},
		{ID: "io-uring", Title: "io_uring", Attack: []string{"T1068"}, Findings: []string{"seccomp-unconfined"}, run: ioUring},
		{ID: "syslog", Title: "kernel log (syslog)", Attack: []string{"T1082"}, Findings: []string{"privileged", "cap-syslog"}, run: syslogProbe},
		{ID: "raw-socket", Title: "raw sockets", Attack: []string{"T1557", "T1040"}, Findings: []string{"cap-net-raw"}, run: rawSocket},
		{ID: "setuid-escalation", Title: "setuid binary raises privileges", Attack: []string{"T1548.001"}, Findings: []string{"no-new-privs-off"}, run: setuidEscalation},
		{ID: "drift", Title: "write then execute a new binary", Attack: []string{"T1105", "T1525"}, Findings: []string{"writable-rootfs"}, run: drift},
		{ID: "abstract-shim-socket", Title: "abstract containerd-shim socket reachable", Attack: []string{"T1611"}, CVE: "CVE-2020-15257", Findings: []string{"host-network"}, run: abstractSocket},
		{ID: "proc-fd-cwd", Title: "leaked host directory descriptor / cwd", Attack: []string{"T1611"}, CVE: "CVE-2024-21626", Findings: []string{"proc-fd-cwd"}, run: leakedFD},
	}
}
