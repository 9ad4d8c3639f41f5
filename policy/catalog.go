package policy

// Check IDs. Policies name these; they never change meaning.
const (
	IDPrivileged                = "privileged"
	IDHostPID                   = "host-pid"
	IDHostIPC                   = "host-ipc"
	IDHostNetwork               = "host-network"
	IDHostUTS                   = "host-uts"
	IDHostUser                  = "host-user"
	IDHostCgroup                = "host-cgroup"
	IDNamespaceJoined           = "namespace-joined"
	IDPodContextUnknown         = "pod-context-unknown"
	IDContainerSocketMount      = "container-socket-mount"
	IDSensitiveHostPathWritable = "sensitive-host-path-writable"
	IDSensitiveHostPath         = "sensitive-host-path"
	IDHostPathMount             = "host-path-mount"
	IDCapSysAdmin               = "cap-sys-admin"
	IDCapSysModule              = "cap-sys-module"
	IDCapSysPtrace              = "cap-sys-ptrace"
	IDCapSysRawio               = "cap-sys-rawio"
	IDCapDacReadSearch          = "cap-dac-read-search"
	IDCapNetAdmin               = "cap-net-admin"
	IDCapBPF                    = "cap-bpf"
	IDCapPerfmon                = "cap-perfmon"
	IDCapSysBoot                = "cap-sys-boot"
	IDCapSyslog                 = "cap-syslog"
	IDCapNetRaw                 = "cap-net-raw"
	IDCapNotBaseline            = "cap-not-baseline"
	IDSeccompUnconfined         = "seccomp-unconfined"
	IDSeccompDefaultAllow       = "seccomp-default-allow"
	IDNoNewPrivsOff             = "no-new-privs-off"
	IDRunAsRoot                 = "run-as-root"
	IDWritableRootfs            = "writable-rootfs"
	IDMaskedPathsEmptied        = "masked-paths-emptied"
	IDReadonlyPathsEmptied      = "readonly-paths-emptied"
	IDSysfsWritable             = "sysfs-writable"
	IDCgroupfsWritable          = "cgroupfs-writable"
	IDHostDevices               = "host-devices"
	IDDeviceCgroupAllowAll      = "device-cgroup-allow-all"
	IDUnsafeSysctl              = "unsafe-sysctl"
	IDSysctlInjection           = "sysctl-injection"
	IDProcFDCwd                 = "proc-fd-cwd"
	IDApparmorUnconfined        = "apparmor-unconfined"
	IDNoMemoryLimit             = "no-memory-limit"
	IDNoPidsLimit               = "no-pids-limit"
	IDUntrustedWorkload         = "untrusted-workload"
	IDHostMount                 = "host-mount-ns"
	IDNamespaceForeign          = "namespace-foreign"
	IDHostSocketMount           = "host-socket-mount"
	IDKernelFSMount             = "kernel-fs-mount"
	IDBlockDeviceMount          = "block-device-mount"
	IDMountPropagationShared    = "mount-propagation-shared"
	IDRootfsHost                = "rootfs-host"
	IDRootfsUnproven            = "rootfs-unproven"
	IDHookNotAllowed            = "hook-not-allowed"
	IDHostDiskDevice            = "host-disk-device"
	IDNetDeviceMoved            = "net-device-moved"
	IDMappingHostRoot           = "id-mapping-host-root"
	IDSeccompHandoff            = "seccomp-handoff"
	IDRealtimePriority          = "realtime-priority"
	IDIntelRdt                  = "intel-rdt"
	IDSelinuxUnconfined         = "selinux-unconfined"
)

// Harden step names, as Check.FixedBy and exemptions' skip lists use them.
// The harden package defines the steps; the names live here so that the
// policy can be validated without importing the rewrite code.
const (
	StepCwd          = "cwd"
	StepCapabilities = "capabilities"
	StepNoNewPrivs   = "no-new-privileges"
	StepMaskedPaths  = "masked-paths"
	StepReadonly     = "readonly-paths"
	StepSysfs        = "sysfs-readonly"
	StepSeccomp      = "seccomp"
	StepUserns       = "userns"
	StepLandlock     = "landlock"
)

// Steps lists every harden step name, in the order the pipeline runs them.
func Steps() []string {
	return []string{StepCwd, StepCapabilities, StepNoNewPrivs, StepMaskedPaths, StepReadonly,
		StepSysfs, StepUserns, StepLandlock, StepSeccomp}
}

const (
	attackEscape         = "T1611"     // Escape to Host
	attackDeploy         = "T1610"     // Deploy Container
	attackPrivEsc        = "T1068"     // Exploitation for Privilege Escalation
	attackSetuid         = "T1548.001" // Abuse Elevation Control Mechanism: Setuid and Setgid
	attackProcDisc       = "T1057"     // Process Discovery
	attackInjection      = "T1055"     // Process Injection
	attackSniffing       = "T1040"     // Network Sniffing
	attackAiTM           = "T1557"     // Adversary-in-the-Middle
	attackCredFiles      = "T1552.001" // Unsecured Credentials: Credentials In Files
	attackRootkit        = "T1014"     // Rootkit
	attackImpair         = "T1562.001" // Impair Defenses: Disable or Modify Tools
	attackShutdown       = "T1529"     // System Shutdown/Reboot
	attackSysInfo        = "T1082"     // System Information Discovery
	attackHijack         = "T1496"     // Resource Hijacking
	attackDoS            = "T1499"     // Endpoint Denial of Service
	attackIngressTool    = "T1105"     // Ingress Tool Transfer
	attackValidAcct      = "T1078"     // Valid Accounts
	attackImplant        = "T1525"     // Implant Internal Image
	attackUserExec       = "T1204.003" // User Execution: Malicious Image
	attackContainerAdmin = "T1609"     // Container Administration Command
	attackHijackFlow     = "T1574"     // Hijack Execution Flow
	attackDiskWipe       = "T1561"     // Disk Wipe
	attackDirectVol      = "T1006"     // Direct Volume Access

	pssPrivileged = "baseline: Privileged Containers"
	pssHostNS     = "baseline: Host Namespaces"
	pssHostPath   = "baseline: HostPath Volumes"
	pssCaps       = "baseline: Capabilities"
	pssProcMount  = "baseline: /proc Mount Type"
	pssSysctls    = "baseline: Sysctls"
	pssAppArmor   = "baseline: AppArmor"
	pssSeccomp    = "restricted: Seccomp"
	pssCapsStrict = "restricted: Capabilities"
	pssPrivEsc    = "restricted: Privilege Escalation"
	pssNonRoot    = "restricted: Running as Non-root"
	pssVolumes    = "restricted: Volume Types"
)

// catalog returns every check ward knows. It is built once per Evaluator so
// that findings can point at shared, read-only values.
func catalog() []Check {
	return []Check{
		{ID: IDPrivileged, Severity: Critical,
			Summary: "privileged: every capability, unmasked /proc, writable /sys and the host's devices; the container is the host",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.4", CISKubernetes: "5.2.2", Kyverno: "disallow-privileged-containers"}},
		{ID: IDHostPID, Severity: High,
			Summary: "shares the host's PID namespace: host processes can be seen, signalled and, with ptrace, entered",
			Attack:  []string{attackEscape, attackProcDisc, attackInjection},
			Refs:    References{PSS: pssHostNS, CISDocker: "5.15", CISKubernetes: "5.2.3", Kyverno: "disallow-host-namespaces"}},
		{ID: IDHostIPC, Severity: High,
			Summary: "shares the host's IPC namespace: host shared memory and message queues are reachable",
			Attack:  []string{attackEscape, attackCredFiles},
			Refs:    References{PSS: pssHostNS, CISDocker: "5.16", CISKubernetes: "5.2.4", Kyverno: "disallow-host-namespaces"}},
		{ID: IDHostNetwork, Severity: High,
			Summary: "shares the host's network namespace: node-local services, abstract sockets (CVE-2020-15257) and all node traffic are reachable",
			Attack:  []string{attackEscape, attackSniffing, attackAiTM},
			Refs:    References{PSS: pssHostNS, CISDocker: "5.9", CISKubernetes: "5.2.5", Kyverno: "disallow-host-namespaces", CVE: "CVE-2020-15257"}},
		{ID: IDHostUTS, Severity: Low,
			Summary: "shares the host's UTS namespace: it can change the node's hostname",
			Attack:  []string{attackImpair},
			Refs:    References{CISDocker: "5.20"}},
		{ID: IDHostUser, Severity: Medium,
			Summary: "no user namespace: root in the container is root on the host, so any escape lands as host root",
			Attack:  []string{attackEscape, attackPrivEsc},
			Refs:    References{CISDocker: "5.30"},
			FixedBy: StepUserns},
		{ID: IDHostCgroup, Severity: Low,
			Summary: "shares the host's cgroup namespace: the host's cgroup paths are visible",
			Attack:  []string{attackSysInfo}},
		{ID: IDNamespaceJoined, Severity: Info,
			Summary: "joins an existing namespace by path; ward cannot tell from the spec whose it is",
			Attack:  []string{attackEscape}},
		{ID: IDPodContextUnknown, Severity: Info,
			Summary: "a pod's app container joins its sandbox's namespaces; without the sandbox spec, host namespaces cannot be judged",
		},
		{ID: IDContainerSocketMount, Severity: Critical,
			Summary: "a container runtime's API socket is mounted: whoever reaches it can start a privileged container on the host",
			Attack:  []string{attackEscape, attackDeploy},
			Refs:    References{PSS: pssHostPath, CISDocker: "5.31", CISKubernetes: "5.2.12", Kyverno: "disallow-container-sock-mounts"}},
		{ID: IDSensitiveHostPathWritable, Severity: Critical,
			Summary: "a sensitive host path is bind-mounted writable: the host's own files (boot, config, credentials, kernel interfaces) can be changed",
			Attack:  []string{attackEscape, attackCredFiles},
			Refs:    References{PSS: pssHostPath, CISDocker: "5.5", CISKubernetes: "5.2.12", Kyverno: "disallow-host-path"}},
		{ID: IDSensitiveHostPath, Severity: Medium,
			Summary: "a sensitive host path is bind-mounted read-only: host secrets and configuration can be read",
			Attack:  []string{attackCredFiles, attackSysInfo},
			Refs:    References{PSS: pssHostPath, CISDocker: "5.5", CISKubernetes: "5.2.12", Kyverno: "disallow-host-path"}},
		{ID: IDHostPathMount, Severity: Low,
			Summary: "a host path is bind-mounted: the container shares files with the node outside any volume the kubelet manages",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssHostPath, CISKubernetes: "5.2.12", Kyverno: "disallow-host-path"},
		},
		{ID: IDCapSysAdmin, Severity: High,
			Summary: "CAP_SYS_ADMIN: mount, cgroup release_agent (CVE-2022-0492), namespaces and most of the kernel's privileged interfaces",
			Attack:  []string{attackEscape, attackPrivEsc},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities", CVE: "CVE-2022-0492"},
			FixedBy: StepCapabilities},
		{ID: IDCapSysModule, Severity: Critical,
			Summary: "CAP_SYS_MODULE: loads kernel modules, i.e. runs code in the host kernel",
			Attack:  []string{attackEscape, attackRootkit},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapSysPtrace, Severity: High,
			Summary: "CAP_SYS_PTRACE: attaches to and injects code into any reachable process",
			Attack:  []string{attackEscape, attackInjection},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapSysRawio, Severity: High,
			Summary: "CAP_SYS_RAWIO: raw I/O ports, /dev/mem and block devices below the filesystem",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapDacReadSearch, Severity: High,
			Summary: "CAP_DAC_READ_SEARCH: open_by_handle_at reaches host files outside the container (the 'shocker' escape)",
			Attack:  []string{attackEscape, attackCredFiles},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapNetAdmin, Severity: Medium,
			Summary: "CAP_NET_ADMIN: reconfigures interfaces, routes and netfilter, and exposes a large kernel surface",
			Attack:  []string{attackAiTM, attackPrivEsc},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapBPF, Severity: High,
			Summary: "CAP_BPF: loads eBPF programs, a common kernel exploitation and rootkit path",
			Attack:  []string{attackEscape, attackRootkit, attackPrivEsc},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapPerfmon, Severity: Medium,
			Summary: "CAP_PERFMON: perf_event_open on the whole system, a kernel attack surface and an information leak",
			Attack:  []string{attackPrivEsc, attackSysInfo},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapSysBoot, Severity: High,
			Summary: "CAP_SYS_BOOT: reboots the node or loads a new kernel with kexec",
			Attack:  []string{attackShutdown, attackEscape},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapSyslog, Severity: Medium,
			Summary: "CAP_SYSLOG: reads the kernel log and kernel addresses, defeating KASLR",
			Attack:  []string{attackSysInfo, attackPrivEsc},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDCapNetRaw, Severity: Low,
			Summary: "CAP_NET_RAW: raw sockets allow spoofing and ARP/DNS poisoning on the pod network",
			Attack:  []string{attackAiTM, attackSniffing},
			Refs:    References{PSS: pssCapsStrict, CISDocker: "5.3", CISKubernetes: "5.2.8", Kyverno: "disallow-capabilities-strict"},
			FixedBy: StepCapabilities},
		{ID: IDCapNotBaseline, Severity: Medium,
			Summary: "capabilities beyond the Pod Security baseline set",
			Attack:  []string{attackPrivEsc},
			Refs:    References{PSS: pssCaps, CISDocker: "5.3", CISKubernetes: "5.2.9", Kyverno: "disallow-capabilities"},
			FixedBy: StepCapabilities},
		{ID: IDSeccompUnconfined, Severity: Medium,
			Summary: "no seccomp profile: every system call, and so the whole kernel attack surface, is reachable",
			Attack:  []string{attackPrivEsc, attackEscape},
			Refs:    References{PSS: pssSeccomp, CISDocker: "5.21", CISKubernetes: "5.7.2", Kyverno: "restrict-seccomp-strict"},
			FixedBy: StepSeccomp},
		{ID: IDSeccompDefaultAllow, Severity: Medium,
			Summary: "seccomp profile allows by default: it only denies what it lists",
			Attack:  []string{attackPrivEsc, attackEscape},
			Refs:    References{PSS: pssSeccomp, CISDocker: "5.21", CISKubernetes: "5.7.2", Kyverno: "restrict-seccomp-strict"},
			FixedBy: StepSeccomp},
		{ID: IDNoNewPrivsOff, Severity: Low,
			Summary: "no_new_privs is off: setuid binaries and file capabilities can raise privileges",
			Attack:  []string{attackSetuid},
			Refs:    References{PSS: pssPrivEsc, CISDocker: "5.25", CISKubernetes: "5.2.6", Kyverno: "disallow-privilege-escalation"},
			FixedBy: StepNoNewPrivs},
		{ID: IDRunAsRoot, Severity: Low,
			Summary: "runs as UID 0",
			Attack:  []string{attackPrivEsc, attackValidAcct},
			Refs:    References{PSS: pssNonRoot, CISKubernetes: "5.2.7", Kyverno: "require-run-as-nonroot"}},
		{ID: IDWritableRootfs, Severity: Low,
			Summary: "the root filesystem is writable: downloaded tools and binaries can be dropped and run (drift)",
			Attack:  []string{attackIngressTool, attackImplant},
			Refs:    References{CISDocker: "5.12", Kyverno: "require-ro-rootfs"}},
		{ID: IDMaskedPathsEmptied, Severity: High,
			Summary: "masked /proc and /sys paths are missing: kernel memory, keys and timers become readable",
			Attack:  []string{attackEscape, attackSysInfo},
			Refs:    References{PSS: pssProcMount, Kyverno: "disallow-proc-mount"},
			FixedBy: StepMaskedPaths},
		{ID: IDReadonlyPathsEmptied, Severity: High,
			Summary: "read-only /proc paths are missing: /proc/sys and /proc/sysrq-trigger become writable",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssProcMount, Kyverno: "disallow-proc-mount"},
			FixedBy: StepReadonly},
		{ID: IDSysfsWritable, Severity: High,
			Summary: "/sys is mounted writable: kernel and device settings of the host can be changed",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.4"},
			FixedBy: StepSysfs},
		{ID: IDCgroupfsWritable, Severity: High,
			Summary: "the cgroup filesystem is mounted writable: release_agent and limits can be rewritten (CVE-2022-0492)",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.24", CVE: "CVE-2022-0492"},
			FixedBy: StepSysfs},
		{ID: IDHostDevices, Severity: High,
			Summary: "host device nodes are passed into the container: disks, memory or consoles of the node",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.17"}},
		{ID: IDDeviceCgroupAllowAll, Severity: High,
			Summary: "the device cgroup allows every device: mknod of a host disk gives raw access to it",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.17"}},
		{ID: IDUnsafeSysctl, Severity: High,
			Summary: "a sysctl outside the Pod Security safe set changes kernel behaviour for the node",
			Attack:  []string{attackEscape, attackImpair},
			Refs:    References{PSS: pssSysctls, Kyverno: "restrict-sysctls"}},
		{ID: IDSysctlInjection, Severity: Critical,
			Summary: "a sysctl value contains '+' or '=': the cr8escape injection sets arbitrary kernel parameters",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssSysctls, Kyverno: "restrict-sysctls", CVE: "CVE-2022-0811"}},
		{ID: IDProcFDCwd, Severity: Critical,
			Summary: "the working directory is under /proc/<pid>/fd: a leaked host directory descriptor becomes the container's cwd (Leaky Vessels)",
			Attack:  []string{attackEscape},
			Refs:    References{CVE: "CVE-2024-21626"}},
		{ID: IDApparmorUnconfined, Severity: Low,
			Summary: "AppArmor is explicitly unconfined",
			Attack:  []string{attackImpair},
			Refs:    References{PSS: pssAppArmor, CISDocker: "5.1", Kyverno: "restrict-apparmor-profiles"}},
		{ID: IDNoMemoryLimit, Severity: Low,
			Summary: "no memory limit: the container can exhaust the node's memory",
			Attack:  []string{attackHijack, attackDoS},
			Refs:    References{CISDocker: "5.10", Kyverno: "require-requests-limits"}},
		{ID: IDNoPidsLimit, Severity: Low,
			Summary: "no pids limit: a fork bomb can exhaust the node's process table",
			Attack:  []string{attackHijack, attackDoS},
			Refs:    References{CISDocker: "5.28"}},
		{ID: IDHostMount, Severity: Critical,
			Summary: "shares the host's mount namespace: the container sees and changes the node's mount table",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssHostNS, CISDocker: "5.19", Kyverno: "disallow-host-namespaces"}},
		{ID: IDNamespaceForeign, Severity: Critical,
			Summary: "a pod's container joins a namespace that is not its pod sandbox's: another pod's network, IPC or PID namespace",
			Attack:  []string{attackEscape, attackInjection},
			Refs:    References{PSS: pssHostNS, CISKubernetes: "5.2.3", Kyverno: "disallow-host-namespaces"}},
		{ID: IDHostSocketMount, Severity: Medium,
			Summary: "a host unix socket is mounted in: whatever listens on it acts for the container with its own privileges",
			Attack:  []string{attackEscape, attackContainerAdmin},
			Refs:    References{PSS: pssHostPath, CISDocker: "5.31", CISKubernetes: "5.2.12", Kyverno: "disallow-host-path"}},
		{ID: IDKernelFSMount, Severity: Critical,
			Summary: "a kernel filesystem is mounted (a second proc or sysfs, debugfs, devtmpfs, bpf, securityfs...): masking and read-only /proc and /sys do not cover it",
			Attack:  []string{attackEscape},
			Refs:    References{PSS: pssProcMount, CISDocker: "5.4", Kyverno: "disallow-proc-mount"}},
		{ID: IDBlockDeviceMount, Severity: Critical,
			Summary: "a host block device is mounted: the node's disk is read and written below every file permission",
			Attack:  []string{attackEscape, attackDirectVol, attackDiskWipe},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.17"}},
		{ID: IDMountPropagationShared, Severity: Medium,
			Summary: "shared mount propagation: mounts made in the container appear on the host",
			Attack:  []string{attackEscape},
			Refs:    References{CISDocker: "5.20", CISKubernetes: "5.2.12"}},
		{ID: IDRootfsHost, Severity: Critical,
			Summary: "the root filesystem is the host's / or a sensitive host directory: the container runs on the node's own files",
			Attack:  []string{attackEscape, attackCredFiles},
			Refs:    References{PSS: pssHostPath, CISDocker: "5.5", Kyverno: "disallow-host-path"}},
		{ID: IDRootfsUnproven, Severity: Low,
			Summary: "the root filesystem is outside the bundle and the container managers' rootfs directories: ward does not chown it",
			Attack:  []string{attackImplant}},
		{ID: IDHookNotAllowed, Severity: Critical,
			Summary: "an OCI hook not on the node's allow-list: hooks run on the host as root, whatever the backend",
			Attack:  []string{attackEscape, attackHijackFlow, attackDeploy},
			Refs:    References{CISDocker: "5.4"}},
		{ID: IDHostDiskDevice, Severity: Critical,
			Summary: "a host disk or memory device (any block device, /dev/mem, /dev/port, raw SCSI, MSRs) is passed in or allowed by the device cgroup",
			Attack:  []string{attackEscape, attackDirectVol, attackDiskWipe},
			Refs:    References{PSS: pssPrivileged, CISDocker: "5.17"}},
		{ID: IDNetDeviceMoved, Severity: High,
			Summary: "a host network interface is moved into the container: the node loses it and the container owns its traffic",
			Attack:  []string{attackSniffing, attackAiTM, attackDoS},
			Refs:    References{PSS: pssHostNS, CISDocker: "5.9"}},
		{ID: IDMappingHostRoot, Severity: Medium,
			Summary: "an ID mapping makes host ID 0 an ID of the container: container root, or the files it writes, are host root's",
			Attack:  []string{attackEscape, attackPrivEsc},
			Refs:    References{CISDocker: "5.30"}},
		{ID: IDSeccompHandoff, Severity: High,
			Summary: "the seccomp profile hands system calls to a listener or tracer outside the node's own agents, which answers them with its own privileges",
			Attack:  []string{attackEscape, attackImpair},
			Refs:    References{PSS: pssSeccomp, CISDocker: "5.21", Kyverno: "restrict-seccomp-strict"}},
		{ID: IDRealtimePriority, Severity: Low,
			Summary: "real-time scheduling or I/O priority: the container can starve the node's own processes",
			Attack:  []string{attackDoS},
			Refs:    References{CISDocker: "5.11"}},
		{ID: IDIntelRdt, Severity: Low,
			Summary: "an Intel RDT class is named or reshaped: cache and memory bandwidth shared with, or taken from, the node",
			Attack:  []string{attackDoS}},
		{ID: IDSelinuxUnconfined, Severity: Low,
			Summary: "SELinux runs the container as an unconfined type (spc_t, unconfined_t)",
			Attack:  []string{attackImpair},
			Refs:    References{PSS: "baseline: SELinux", CISDocker: "5.2", Kyverno: "disallow-selinux"}},
		{ID: IDUntrustedWorkload, Severity: Medium,
			Summary: "the workload is marked untrusted by the node policy (annotation, namespace or image registry)",
			Attack:  []string{attackUserExec, attackDeploy}},
	}
}
