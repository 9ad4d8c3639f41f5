package alert

import "slices"

// The rules every producer raises alerts under, in one table: the policy's
// detection section names them by ID, docs/detection.md lists them, and
// the seccomp supervisor finds a syscall's rule here. Names are Falco's
// own (falcosecurity/rules) where the meaning matches, so that routing and
// dashboards built for Falco apply; the others are ward's, in Falco's
// style.
//
// Syscalls are those ward's baseline refuses and its supervisor is told
// of; a syscall the baseline allows (ptrace on Linux >= 4.8, chroot with
// CAP_SYS_CHROOT) is never sent, whatever this table lists.
func Catalog() []Rule {
	return []Rule{
		{ID: "mount", Name: "Mount Launched in Privileged Container", Priority: PriorityWarning,
			Tags:     []string{"T1611", "container", "filesystem", "mitre_privilege_escalation"},
			Summary:  "Mount or root change attempted in a container",
			Syscalls: []string{"mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "pivot_root", "chroot"}},
		{ID: "userns", Name: "Change namespace privileges via unshare", Priority: PriorityWarning,
			Tags:     []string{"T1611", "container", "process", "mitre_privilege_escalation"},
			Summary:  "New namespace (user namespace) attempted in a container",
			Syscalls: []string{"unshare", "clone"}},
		{ID: "setns", Name: "Change thread namespace", Priority: PriorityWarning,
			Tags:     []string{"T1611", "container", "process", "mitre_privilege_escalation"},
			Summary:  "Namespace change (setns) attempted in a container",
			Syscalls: []string{"setns"}},
		{ID: "ptrace", Name: "PTRACE attached to process", Priority: PriorityWarning,
			Tags:     []string{"T1055.008", "container", "process", "mitre_privilege_escalation"},
			Summary:  "Process tracing or memory access attempted in a container",
			Syscalls: []string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp"}},
		{ID: "module", Name: "Linux Kernel Module Injection Detected", Priority: PriorityCritical,
			Tags:     []string{"T1547.006", "T1611", "container", "process", "mitre_persistence"},
			Summary:  "Kernel module load or unload attempted in a container",
			Syscalls: []string{"init_module", "finit_module", "delete_module", "create_module"}},
		{ID: "bpf", Name: "BPF Program Not Profiled", Priority: PriorityCritical,
			Tags:     []string{"T1611", "T1014", "container", "mitre_privilege_escalation"},
			Summary:  "bpf() attempted in a container",
			Syscalls: []string{"bpf"}},
		{ID: "keyring", Name: "Kernel keyring access in container", Priority: PriorityWarning,
			Tags:     []string{"T1611", "T1552", "container", "mitre_credential_access"},
			Summary:  "Kernel key retention service (not namespaced) used in a container",
			Syscalls: []string{"keyctl", "add_key", "request_key"}},
		{ID: "perf", Name: "perf_event_open in container", Priority: PriorityWarning,
			Tags:     []string{"T1068", "container", "mitre_privilege_escalation"},
			Summary:  "perf_event_open attempted in a container",
			Syscalls: []string{"perf_event_open"}},
		{ID: "open-by-handle", Name: "Open by file handle in container", Priority: PriorityCritical,
			Tags:     []string{"T1611", "container", "filesystem", "mitre_privilege_escalation"},
			Summary:  "open_by_handle_at (the shocker breakout) attempted in a container",
			Syscalls: []string{"open_by_handle_at"}},
		{ID: "userfaultfd", Name: "Unprivileged Delegation of Page Faults Handling to a Userspace Process", Priority: PriorityWarning,
			Tags:     []string{"T1068", "container", "mitre_privilege_escalation"},
			Summary:  "userfaultfd attempted in a container",
			Syscalls: []string{"userfaultfd"}},
		{ID: "io-uring", Name: "io_uring set up in container", Priority: PriorityWarning,
			Tags:     []string{"T1068", "T1562.001", "container", "mitre_defense_evasion"},
			Summary:  "io_uring (which bypasses syscall filtering) attempted in a container",
			Syscalls: []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}},
		{ID: "kernel", Name: "Kernel replacement or hardware access in container", Priority: PriorityCritical,
			Tags:     []string{"T1611", "T1529", "container", "mitre_impact"},
			Summary:  "kexec, reboot, swap or raw I/O port access attempted in a container",
			Syscalls: []string{"kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "iopl", "ioperm"}},
		// What seccomp cannot see: the eBPF sensor's rules (internal/sensor).
		{ID: "release-agent", Name: "Detect release_agent File Container Escapes", Priority: PriorityCritical,
			Tags:    []string{"T1611", "container", "filesystem", "mitre_privilege_escalation"},
			Summary: "cgroup release_agent or notify_on_release opened for writing in a container"},
		{ID: "core-pattern", Name: "Write to core_pattern in container", Priority: PriorityCritical,
			Tags:    []string{"T1611", "container", "filesystem", "mitre_privilege_escalation"},
			Summary: "/proc/sys/kernel/core_pattern opened for writing in a container"},
		{ID: "sysrq", Name: "Write to sysrq-trigger in container", Priority: PriorityCritical,
			Tags:    []string{"T1529", "container", "filesystem", "mitre_impact"},
			Summary: "/proc/sysrq-trigger opened for writing in a container"},
		{ID: "proc-sys", Name: "Write below /proc/sys in container", Priority: PriorityWarning,
			Tags:    []string{"T1611", "container", "filesystem", "mitre_privilege_escalation"},
			Summary: "A kernel parameter under /proc/sys opened for writing in a container"},
		{ID: "uevent-helper", Name: "Write to uevent_helper in container", Priority: PriorityCritical,
			Tags:    []string{"T1611", "container", "filesystem", "mitre_privilege_escalation"},
			Summary: "/sys/kernel/uevent_helper opened for writing in a container"},
		{ID: "host-device", Name: "Host device opened in container", Priority: PriorityWarning,
			Tags:    []string{"T1611", "T1006", "container", "filesystem", "mitre_privilege_escalation"},
			Summary: "A host block or character device opened in a container"},
		{ID: "drift", Name: "Drop and execute new binary in container", Priority: PriorityCritical,
			Tags:    []string{"T1105", "container", "process", "mitre_persistence"},
			Summary: "A file written in the container after it started, not by the image's own toolchain alone, was executed"},
	}
}

// Lookup finds a rule by ID.
func Lookup(id string) (Rule, bool) {
	i := slices.IndexFunc(Catalog(), func(r Rule) bool { return r.ID == id })
	if i < 0 {
		return Rule{}, false
	}
	return Catalog()[i], true
}

// SyscallRules maps each syscall the catalog names to its rule.
func SyscallRules() map[string]Rule {
	m := make(map[string]Rule)
	for _, r := range Catalog() {
		for _, s := range r.Syscalls {
			m[s] = r
		}
	}
	return m
}

// NotifySyscalls is every syscall the catalog names, sorted: the
// supervisor is told of the baseline's denials of these.
func NotifySyscalls() []string {
	var names []string
	for _, r := range Catalog() {
		names = append(names, r.Syscalls...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
