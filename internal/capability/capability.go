// Package capability knows the Linux capability names that may appear in an
// OCI spec and the sets ward reasons about.
//
// The names are the kernel's (include/uapi/linux/capability.h) with the
// "CAP_" prefix that the OCI runtime spec uses. ward refuses a spec that names
// a capability outside this list instead of guessing: runc would refuse it
// too, and a name ward does not know is a name ward cannot judge.
package capability

import "slices"

// known lists every capability up to CAP_CHECKPOINT_RESTORE (Linux 5.9),
// indexed by its kernel number.
var known = [...]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Count is the number of capabilities ward knows.
const Count = len(known)

// Known reports whether name is a capability ward knows.
func Known(name string) bool {
	return slices.Contains(known[:], name)
}

// All returns every known capability name, in kernel order.
func All() []string {
	return slices.Clone(known[:])
}

// Baseline returns the capabilities the Pod Security Standards "baseline"
// profile lets a container keep, without CAP_NET_RAW: raw sockets allow
// spoofing and ARP/DNS poisoning on the node's network, and almost no workload
// needs them (ping works through ICMP sockets and ping_group_range).
func Baseline() []string {
	return []string{
		"CAP_AUDIT_WRITE",
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FOWNER",
		"CAP_FSETID",
		"CAP_KILL",
		"CAP_MKNOD",
		"CAP_NET_BIND_SERVICE",
		"CAP_SETFCAP",
		"CAP_SETGID",
		"CAP_SETPCAP",
		"CAP_SETUID",
		"CAP_SYS_CHROOT",
	}
}

// Index returns name's kernel number, or -1 when ward does not know it.
func Index(name string) int {
	for i, n := range known {
		if n == name {
			return i
		}
	}
	return -1
}

// Set is a set of known capabilities, one bit per kernel number. It lets hot
// paths combine and compare capability lists without allocating.
type Set uint64

// SetOf returns the set of the known names in names; unknown names are
// ignored (bundle validation has already refused them).
func SetOf(names ...[]string) Set {
	var s Set
	for _, list := range names {
		for _, n := range list {
			if i := Index(n); i >= 0 {
				s |= 1 << uint(i)
			}
		}
	}
	return s
}

// Has reports whether the set holds name.
func (s Set) Has(name string) bool {
	i := Index(name)
	return i >= 0 && s&(1<<uint(i)) != 0
}

// Len is the number of capabilities in the set.
func (s Set) Len() int {
	n := 0
	for ; s != 0; s &= s - 1 {
		n++
	}
	return n
}

// Names lists the set's capabilities in kernel order.
func (s Set) Names() []string {
	names := make([]string, 0, s.Len())
	for i, n := range known {
		if s&(1<<uint(i)) != 0 {
			names = append(names, n)
		}
	}
	return names
}
