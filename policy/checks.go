package policy

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/capability"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/profiles"
)

// scan holds one evaluation's state: the input, the node facts from the
// policy, and the findings so far.
type scan struct {
	in       *Input
	node     *nodeTables
	checks   map[string]*Check
	findings []Finding
}

func (s *scan) emit(id, fieldPath, detail string) {
	s.findings = append(s.findings, Finding{Check: s.checks[id], Path: fieldPath, Detail: detail})
}

// runChecks looks at the spec alone. Policy-dependent findings (trust) are
// added by the evaluator.
func (s *scan) runChecks() {
	spec := s.in.Spec
	s.checkNamespaces()
	s.checkMounts()
	if p := spec.Process; p != nil {
		s.checkProcess(p)
	}
	s.checkRoot()
	s.checkHooks()
	s.checkScheduling()
	if spec.Root != nil && !spec.Root.Readonly {
		s.emit(IDWritableRootfs, "root.readonly", "root filesystem is mounted read-write")
	}
	s.checkLinux()
	s.checkPrivileged()
}

// podLevel are the checks that only a sandbox spec can show; an app
// container inherits them from its pod.
func podLevel(id string) bool {
	switch id {
	case IDHostPID, IDHostIPC, IDHostNetwork, IDHostUTS, IDUnsafeSysctl, IDSysctlInjection:
		return true
	}
	return false
}

func (s *scan) checkNamespaces() {
	spec := s.in.Spec
	kind := s.in.Workload.Kind
	hostIDs := [...]struct {
		typ     specs.LinuxNamespaceType
		id      string
		missing string
	}{
		{specs.PIDNamespace, IDHostPID, "no pid namespace: the host's is used"},
		{specs.IPCNamespace, IDHostIPC, "no ipc namespace: the host's is used"},
		{specs.NetworkNamespace, IDHostNetwork, "no network namespace: the host's is used"},
		{specs.UTSNamespace, IDHostUTS, "no uts namespace: the host's is used"},
		{specs.UserNamespace, IDHostUser, "no user namespace: the host's is used"},
		{specs.CgroupNamespace, IDHostCgroup, "no cgroup namespace: the host's is used"},
		{specs.MountNamespace, IDHostMount, "no mount namespace: the host's mount table is used"},
	}
	var nss []specs.LinuxNamespace
	if spec.Linux != nil {
		nss = spec.Linux.Namespaces
	}
	joined := false
	for _, h := range hostIDs {
		i := slices.IndexFunc(nss, func(ns specs.LinuxNamespace) bool { return ns.Type == h.typ })
		if i < 0 {
			s.emit(h.id, "linux.namespaces", h.missing)
			continue
		}
		p := nss[i].Path
		if p == "" {
			continue
		}
		field := "linux.namespaces[" + strconv.Itoa(i) + "].path"
		if s.checkNamespaceObject(field, nss[i], h.id) {
			continue
		}
		switch {
		case isInitNamespace(p):
			s.emit(h.id, field, "joins "+p+", the host's initial "+string(h.typ)+" namespace")
		case kind == bundle.PodContainer:
			joined = true
		case kind == bundle.Sandbox:
			// The CRI plugin creates the pod's network namespace itself and
			// hands the sandbox its path.
		default:
			s.emit(IDNamespaceJoined, field, "joins the "+string(h.typ)+" namespace at "+p)
		}
	}
	if kind != bundle.PodContainer {
		return
	}
	if s.in.Pod == nil {
		if joined {
			s.emit(IDPodContextUnknown, "linux.namespaces",
				"joins its sandbox's namespaces by path; judge it with its sandbox spec to see host namespaces and sysctls")
		}
		return
	}
	for _, f := range s.in.Pod.Findings {
		if !podLevel(f.Check.ID) || slices.ContainsFunc(s.findings, func(g Finding) bool { return g.Check.ID == f.Check.ID }) {
			continue
		}
		f.Pod = true
		f.Waived = ""
		s.findings = append(s.findings, f)
	}
}

// isInitNamespace reports whether p names a namespace of PID 1, which is the
// host's own as seen by the runtime.
func isInitNamespace(p string) bool {
	return strings.HasPrefix(path.Clean(p), "/proc/1/ns/")
}

// isLauncherMount recognises the read-only bind of ward-init that the
// Landlock step adds: ward's own mount, not a host path the workload asked
// for. src is the resolved source, so a link named ward-init that leads
// elsewhere does not qualify.
func isLauncherMount(m *specs.Mount, src string) bool {
	return path.Clean(m.Destination) == landlock.LauncherPath && path.Base(src) == "ward-init" && isReadonly(m)
}

func mountField(i int, field string) string {
	return "mounts[" + strconv.Itoa(i) + "]." + field
}

func isBind(m *specs.Mount) bool {
	return m.Type == "bind" || m.Type == "rbind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func isReadonly(m *specs.Mount) bool {
	return slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rro")
}

func (s *scan) checkMounts() {
	for i := range s.in.Spec.Mounts {
		m := &s.in.Spec.Mounts[i]
		s.checkMountObject(i, m)
		switch {
		case m.Type == "sysfs" || (m.Destination == "/sys" && isBind(m) && path.Clean(m.Source) == "/sys"):
			if !isReadonly(m) && path.Clean(m.Destination) == "/sys" {
				s.emit(IDSysfsWritable, mountField(i, "options"), "sysfs mounted at "+m.Destination+" without ro")
			}
		case m.Type == "cgroup" || m.Type == "cgroup2":
			if !isReadonly(m) {
				s.emit(IDCgroupfsWritable, mountField(i, "options"), m.Type+" mounted at "+m.Destination+" without ro")
			}
		}
		if !isBind(m) {
			continue
		}
		if !path.IsAbs(m.Source) {
			// A relative source is the bundle's, unless what it leads to
			// on this node says otherwise.
			s.checkBindObject(i, m, false)
			continue
		}
		s.checkBind(i, m)
	}
}

func (s *scan) checkBind(i int, m *specs.Mount) {
	src := hostPath(m.Source)
	via := ""
	if real := resolved(m.Source, s.in); real != m.Source {
		if r := hostPath(real); r != src {
			src, via = r, real
		}
	}
	// Strings are built only for findings: most binds of a pod are the
	// kubelet's and containerd's own, and this runs on every container.
	what := func() string {
		if via != "" {
			return m.Source + " (resolves to " + via + ") at " + m.Destination
		}
		return m.Source + " at " + m.Destination
	}
	if sock := socketExposed(src, s.node.sockets); sock != "" {
		detail := what()
		if sock != src {
			detail += ", exposing " + sock
		}
		s.emit(IDContainerSocketMount, mountField(i, "source"), detail)
	}
	own := s.node.owner(src, s.in) != hostOwned
	s.checkBindObject(i, m, own)
	if own || isLauncherMount(m, src) {
		return
	}
	if dir := sensitiveExposed(src, s.node.sensitive); dir != "" {
		if isReadonly(m) {
			s.emit(IDSensitiveHostPath, mountField(i, "source"), what()+" (read-only)")
		} else {
			s.emit(IDSensitiveHostPathWritable, mountField(i, "source"), what()+" (writable)")
		}
	}
	s.emit(IDHostPathMount, mountField(i, "source"), what())
}

// dangerousCaps maps capabilities to their own check.
func dangerousCaps() map[string]string {
	return map[string]string{
		"CAP_SYS_ADMIN":       IDCapSysAdmin,
		"CAP_SYS_MODULE":      IDCapSysModule,
		"CAP_SYS_PTRACE":      IDCapSysPtrace,
		"CAP_SYS_RAWIO":       IDCapSysRawio,
		"CAP_DAC_READ_SEARCH": IDCapDacReadSearch,
		"CAP_NET_ADMIN":       IDCapNetAdmin,
		"CAP_BPF":             IDCapBPF,
		"CAP_PERFMON":         IDCapPerfmon,
		"CAP_SYS_BOOT":        IDCapSysBoot,
		"CAP_SYSLOG":          IDCapSyslog,
		"CAP_NET_RAW":         IDCapNetRaw,
	}
}

// processCaps is every capability the process holds or can gain: ambient,
// effective and permitted it has; bounding limits what exec of a
// file-capability or setuid binary can give it.
func processCaps(c *specs.LinuxCapabilities) capability.Set {
	if c == nil {
		return 0
	}
	return capability.SetOf(c.Bounding, c.Effective, c.Permitted, c.Ambient, c.Inheritable)
}

func (s *scan) checkProcess(p *specs.Process) {
	if caps := processCaps(p.Capabilities); caps != 0 {
		extra := caps &^ s.node.baseline
		for _, name := range extra.Names() {
			if id, ok := s.node.dangerous[name]; ok {
				s.emit(id, "process.capabilities", name)
				extra &^= capability.SetOf([]string{name})
			}
		}
		if extra != 0 {
			s.emit(IDCapNotBaseline, "process.capabilities", strings.Join(extra.Names(), ", "))
		}
	}
	if !p.NoNewPrivileges {
		s.emit(IDNoNewPrivsOff, "process.noNewPrivileges", "no_new_privs is not set")
	}
	if p.User.UID == 0 {
		s.emit(IDRunAsRoot, "process.user.uid", "uid 0")
	}
	if IsProcFD(p.Cwd) {
		s.emit(IDProcFDCwd, "process.cwd", p.Cwd)
	}
	if p.ApparmorProfile == "unconfined" {
		s.emit(IDApparmorUnconfined, "process.apparmorProfile", "unconfined")
	}
	s.checkSelinux(p)
}

// IsProcFD reports whether dir is a file-descriptor directory of /proc, or
// below one: /proc/self/fd/7, /proc/thread-self/fd, /proc/1/task/1/fd/3.
// runc before 1.1.12 let such a cwd resolve to a leaked host directory
// descriptor (CVE-2024-21626).
func IsProcFD(dir string) bool {
	dir = path.Clean(dir)
	if !within(dir, "/proc") {
		return false
	}
	return slices.Contains(strings.Split(dir, "/"), "fd")
}

// launcherFilter reports whether the container's process runs under
// ward-init with ward's compiled seccomp filter mounted for it.
func launcherFilter(s *specs.Spec) bool {
	if s.Process == nil || len(s.Process.Args) == 0 || s.Process.Args[0] != landlock.LauncherPath {
		return false
	}
	return slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool {
		return path.Clean(m.Destination) == landlock.SeccompPath && m.Type == "bind"
	})
}

func (s *scan) checkLinux() {
	l := s.in.Spec.Linux
	// With ward's compiled filter handed to ward-init, no or any profile
	// for runc is fine: the baseline is stacked on whatever runc installs.
	// harden's seccomp step refuses any other file at that path.
	filtered := launcherFilter(s.in.Spec)
	if l == nil {
		if !filtered {
			s.emit(IDSeccompUnconfined, "linux.seccomp", "no linux section")
		}
		return
	}
	switch {
	case filtered:
	case l.Seccomp == nil:
		s.emit(IDSeccompUnconfined, "linux.seccomp", "no seccomp profile")
	case profiles.IsUnconfined(l.Seccomp):
		s.emit(IDSeccompUnconfined, "linux.seccomp", "an empty profile: runc installs no filter")
	case profiles.IsDefaultAllow(l.Seccomp):
		s.emit(IDSeccompDefaultAllow, "linux.seccomp.defaultAction", string(l.Seccomp.DefaultAction))
	}
	if missing := missingPaths(l.MaskedPaths, s.node.masked); len(l.MaskedPaths) == 0 || missing != "" {
		s.emit(IDMaskedPathsEmptied, "linux.maskedPaths", describeMissing(len(l.MaskedPaths), missing))
	}
	if missing := missingPaths(l.ReadonlyPaths, s.node.readonly); len(l.ReadonlyPaths) == 0 || missing != "" {
		s.emit(IDReadonlyPathsEmptied, "linux.readonlyPaths", describeMissing(len(l.ReadonlyPaths), missing))
	}
	s.checkDevices(l)
	s.checkLinuxExtras(l)
	s.checkSysctls(l.Sysctl)
	r := l.Resources
	if r == nil || r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit <= 0 {
		s.emit(IDNoMemoryLimit, "linux.resources.memory.limit", "unset")
	}
	if r == nil || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit <= 0 {
		s.emit(IDNoPidsLimit, "linux.resources.pids.limit", "unset")
	}
}

// CoreMaskedPaths are the /proc and /sys entries whose absence ward reports:
// the ones every runtime's default masks. Harden restores a longer list.
func CoreMaskedPaths() []string {
	return []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"}
}

// CoreReadonlyPaths are the read-only /proc entries whose absence ward reports.
func CoreReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

func missingPaths(have, want []string) string {
	var missing []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	return strings.Join(missing, ", ")
}

func describeMissing(n int, missing string) string {
	if n == 0 {
		return "empty"
	}
	return "missing " + missing
}

// isSafeSysctl reports whether a sysctl is in SafeSysctls.
func isSafeSysctl(name string) bool {
	return slices.Contains(SafeSysctls(), strings.ReplaceAll(name, "/", "."))
}

func (s *scan) checkSysctls(sysctls map[string]string) {
	if len(sysctls) == 0 {
		return
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := sysctls[k]
		field := fieldOf("linux.sysctl", k)
		if strings.ContainsAny(k, "+=") || strings.ContainsAny(v, "+=") {
			s.emit(IDSysctlInjection, field, k+"="+strconv.Quote(v))
		}
		if !isSafeSysctl(k) {
			s.emit(IDUnsafeSysctl, field, k+"="+v)
		}
	}
}

func fieldOf(base, key string) string {
	return base + "[" + strconv.Quote(key) + "]"
}

// checkPrivileged recognises what a container manager makes of
// "privileged: true": no single field says so at the node.
func (s *scan) checkPrivileged() {
	spec := s.in.Spec
	if spec.Process == nil || spec.Linux == nil {
		return
	}
	caps := processCaps(spec.Process.Capabilities)
	if caps.Len() < capability.Count-3 {
		return
	}
	l := spec.Linux
	var signals []string
	if len(l.MaskedPaths) == 0 {
		signals = append(signals, "unmasked /proc")
	}
	if slices.ContainsFunc(s.findings, func(f Finding) bool { return f.Check.ID == IDSysfsWritable }) {
		signals = append(signals, "writable /sys")
	}
	if n, _ := hostDevices(l.Devices); n > 0 || slices.ContainsFunc(s.findings, func(f Finding) bool { return f.Check.ID == IDDeviceCgroupAllowAll }) {
		signals = append(signals, "host devices")
	}
	if len(signals) >= 2 {
		s.emit(IDPrivileged, "process.capabilities", fmt.Sprintf("%d capabilities, %s", caps.Len(), strings.Join(signals, ", ")))
	}
}
