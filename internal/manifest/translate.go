package manifest

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/capability"
	"github.com/ward-runtime/ward/policy"
)

// Node is what the translation takes as given about the node: where the
// kubelet and containerd keep per-pod files, which pod annotations the
// runtime handler passes on, and whether the node runs AppArmor. Defaults
// are those of a kubeadm node with containerd 2.4 and `ward install`.
type Node struct {
	KubeletRoot     string
	ContainerdRoot  string
	ContainerdState string
	// PodAnnotations are the globs of the handler's pod_annotations:
	// containerd copies only these pod annotations into the specs.
	PodAnnotations []string
	// AppArmor is true when the node's kernel runs AppArmor: containerd
	// then applies its default profile, or "unconfined" where asked.
	AppArmor bool
	// SandboxImage is the pause image containerd runs for every pod.
	SandboxImage string
}

// DefaultNode is a node running p: its kubelet root, containerd's default
// directories, the annotations `ward install` passes, AppArmor on.
func DefaultNode(p *policy.Policy) Node {
	return Node{
		KubeletRoot:     p.Node.KubeletRoot,
		ContainerdRoot:  "/var/lib/containerd",
		ContainerdState: "/run/containerd",
		PodAnnotations:  []string{"ward.dev/*"},
		AppArmor:        true,
		SandboxImage:    "registry.k8s.io/pause:3.10",
	}
}

// Assumption IDs: what a manifest cannot say and the node decides. Each is
// reported beside the findings, and the translation takes the worst case.
const (
	// AssumeImageConfig: no runAsUser, so the image's USER decides (judged
	// as root), and no workingDir, so the image's WORKDIR does (judged
	// as "/", which cannot show a /proc/<pid>/fd working directory).
	AssumeImageConfig = "image-config-unknown"
	// AssumeSeccompDefault: no seccompProfile, so the kubelet's
	// --seccomp-default decides (judged as Unconfined, its default).
	AssumeSeccompDefault = "seccomp-default-unknown"
	// AssumeNamespace: no metadata.namespace, and the policy judges by
	// namespace: judged as "default".
	AssumeNamespace = "namespace-unknown"
	// AssumeRuntimeClass: runtimeClassName names a handler; whether it is
	// ward's is the node's configuration.
	AssumeRuntimeClass = "runtime-class"
	// AssumeLocalhostSeccomp: a Localhost profile is a file on the node;
	// judged as the file's profile cannot be seen.
	AssumeLocalhostSeccomp = "seccomp-localhost-unknown"
)

// Assumption is one fact only the node knows, and what the scan took.
type Assumption struct {
	ID string `json:"id"`
	// Field is the manifest field that would settle it.
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Spec is one OCI spec the node would be handed, with where its fields
// came from in the manifest.
type Spec struct {
	Spec *specs.Spec
	// Field is the manifest path of the container (or of the pod spec, for
	// the sandbox).
	Field       string
	Assumptions []Assumption
	origins     map[string]string
}

// Origin returns the manifest field that produced the spec field ociPath
// (a finding's path): the longest recorded prefix, else the container's
// (or pod spec's) own path.
func (s *Spec) Origin(ociPath string) string {
	for p := ociPath; p != ""; p = parentPath(p) {
		if o, ok := s.origins[p]; ok {
			return o
		}
	}
	return s.Field
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func (s *Spec) origin(ociPath, field string) {
	if s.origins == nil {
		s.origins = map[string]string{}
	}
	s.origins[ociPath] = field
}

func (s *Spec) assume(id, field, detail string) {
	s.Assumptions = append(s.Assumptions, Assumption{ID: id, Field: field, Detail: detail})
}

// Container is one container of a pod.
type Container struct {
	Spec
	Name  string
	Image string
	// Init is true for init containers (sidecars included).
	Init bool
}

// Pod is what the node would see for one pod template.
type Pod struct {
	Object     *Object
	UID        string
	Sandbox    Spec
	Containers []Container
}

// Placeholders for what the node assigns at run time. They are shaped so
// that the checks read them as the node's values would read: the pod's
// own kubelet directory, a namespace path that is not PID 1's.
const (
	placeholderUID       = "00000000-0000-0000-0000-000000000000"
	placeholderSandboxNS = "/proc/<sandbox pid>/ns/"
	// podUsernsHost is where a hostUsers: false pod's IDs start on the
	// host: the kubelet hands out 65536-ID blocks above 65535.
	podUsernsHost = 65536 * 16
)

// DefaultCapabilities is the capability set containerd's CRI plugin gives
// a container that asks for no change, in its order.
func DefaultCapabilities() []string {
	return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
}

// The kubelet's default masked and read-only paths (procMount: Default).
func defaultMasked() []string {
	return []string{"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
		"/sys/devices/virtual/powercap", "/proc/scsi"}
}

func defaultReadonly() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// Translate builds the node-side specs for o's pod template.
func Translate(o *Object, n Node) (*Pod, error) {
	ps := &o.Template.Spec
	uid := string(o.Template.UID)
	if uid == "" {
		uid = placeholderUID
	}
	name := o.Template.Name
	if name == "" {
		name = o.Name
	}
	ns := o.Namespace
	if ns == "" {
		ns = o.Template.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	pod := &Pod{Object: o, UID: uid}
	sandboxID := "scan-" + name
	podAnn := passedAnnotations(o.Template.Annotations, n)
	privilegedPod := slices.ContainsFunc(allContainers(ps), func(c containerRef) bool { return isPrivileged(c.c) })

	sb := &pod.Sandbox
	sb.Field = o.Field("")
	sb.Spec = sandboxSpec(o, n, uid, sandboxID, name, ns, podAnn, privilegedPod)
	for k := range podAnn {
		sb.origin(fieldKey("annotations", k), o.MetaField("annotations"))
	}
	sb.origin("linux.namespaces", o.Field("hostUsers"))
	for i, nsp := range sb.Spec.Linux.Namespaces {
		f := ""
		switch nsp.Type {
		case specs.NetworkNamespace:
			f = "hostNetwork"
		case specs.PIDNamespace:
			f = "hostPID"
		case specs.IPCNamespace:
			f = "hostIPC"
		case specs.UserNamespace:
			f = "hostUsers"
		}
		if f != "" {
			sb.origin("linux.namespaces["+strconv.Itoa(i)+"]", o.Field(f))
		}
	}
	if sc := ps.SecurityContext; sc != nil {
		for i, s := range sc.Sysctls {
			sb.origin(fieldKey("linux.sysctl", s.Name), o.Field("securityContext.sysctls["+strconv.Itoa(i)+"]"))
		}
	}
	sb.origin("linux.seccomp", o.Field("securityContext.seccompProfile"))
	for i, m := range sb.Spec.Mounts {
		if m.Destination == "/sys" && privilegedPod {
			sb.origin("mounts["+strconv.Itoa(i)+"]", o.Field("containers"))
		}
		if m.Destination == "/dev/shm" && ps.HostIPC {
			sb.origin("mounts["+strconv.Itoa(i)+"]", o.Field("hostIPC"))
		}
	}

	for _, ref := range allContainers(ps) {
		c, err := containerSpec(o, n, ref, uid, sandboxID, name, ns, podAnn)
		if err != nil {
			return nil, err
		}
		pod.Containers = append(pod.Containers, *c)
	}
	return pod, nil
}

type containerRef struct {
	c     *corev1.Container
	field string // "containers[0]"
	init  bool
}

func allContainers(ps *corev1.PodSpec) []containerRef {
	var out []containerRef
	for i := range ps.InitContainers {
		out = append(out, containerRef{&ps.InitContainers[i], "initContainers[" + strconv.Itoa(i) + "]", true})
	}
	for i := range ps.Containers {
		out = append(out, containerRef{&ps.Containers[i], "containers[" + strconv.Itoa(i) + "]", false})
	}
	return out
}

func isPrivileged(c *corev1.Container) bool {
	return c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
}

func fieldKey(base, key string) string {
	return base + "[" + strconv.Quote(key) + "]"
}

// Passes reports whether containerd copies the pod annotation key into
// the specs: whether it matches one of the handler's pod_annotations
// (exact keys, or a prefix ending in '*', as containerd reads them).
func (n Node) Passes(key string) bool {
	for _, g := range n.PodAnnotations {
		if g == key || (strings.HasSuffix(g, "*") && strings.HasPrefix(key, strings.TrimSuffix(g, "*"))) {
			return true
		}
	}
	return false
}

// passedAnnotations are the pod annotations containerd copies into the
// specs.
func passedAnnotations(ann map[string]string, n Node) map[string]string {
	out := map[string]string{}
	for k, v := range ann {
		if n.Passes(k) {
			out[k] = v
		}
	}
	return out
}

func podAnnotations(kind, sandboxID, name, ns, uid string, podAnn map[string]string) map[string]string {
	a := map[string]string{
		bundle.AnnotationContainerType:    kind,
		bundle.AnnotationSandboxID:        sandboxID,
		bundle.AnnotationSandboxName:      name,
		bundle.AnnotationSandboxNamespace: ns,
		bundle.AnnotationSandboxUID:       uid,
	}
	for k, v := range podAnn {
		a[k] = v
	}
	return a
}

func baseMounts(privileged bool) []specs.Mount {
	sysOpt := "ro"
	if privileged {
		sysOpt = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysOpt}},
	}
}

func caps(names []string) *specs.LinuxCapabilities {
	return &specs.LinuxCapabilities{Bounding: slices.Clone(names), Effective: slices.Clone(names), Permitted: slices.Clone(names)}
}

func (n Node) sandboxDir(root, sandboxID string) string {
	return path.Join(root, "io.containerd.grpc.v1.cri/sandboxes", sandboxID)
}

func sandboxSpec(o *Object, n Node, uid, sandboxID, name, ns string, podAnn map[string]string, privileged bool) *specs.Spec {
	ps := &o.Template.Spec
	ann := podAnnotations("sandbox", sandboxID, name, ns, uid, podAnn)
	ann["io.kubernetes.cri.podsandbox.image-name"] = n.SandboxImage
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:            specs.User{UID: 65535, GID: 65535},
			Args:            []string{"/pause"},
			Cwd:             "/",
			Capabilities:    caps(DefaultCapabilities()),
			NoNewPrivileges: true,
		},
		Root:        &specs.Root{Path: "rootfs", Readonly: true},
		Annotations: ann,
		Linux: &specs.Linux{
			Resources:     &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			MaskedPaths:   defaultMasked(),
			ReadonlyPaths: defaultReadonly(),
		},
	}
	shm := path.Join(n.sandboxDir(n.ContainerdState, sandboxID), "shm")
	if ps.HostIPC {
		shm = "/dev/shm"
	}
	s.Mounts = append(baseMounts(privileged),
		specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shm, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: path.Join(n.sandboxDir(n.ContainerdRoot, sandboxID), "resolv.conf"), Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
	)
	l := s.Linux
	if !ps.HostPID {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !ps.HostIPC {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if !ps.HostNetwork {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
		s.Hostname = name
	}
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
	if !ps.HostNetwork {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-" + uid})
	}
	if ps.HostUsers != nil && !*ps.HostUsers {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		l.UIDMappings, l.GIDMappings = podMappings(), podMappings()
	}
	sysctls := map[string]string{}
	if sc := ps.SecurityContext; sc != nil {
		for _, sy := range sc.Sysctls {
			sysctls[sy.Name] = sy.Value
		}
	}
	if !ps.HostNetwork {
		// containerd 2's enable_unprivileged_ports and _icmp, on by
		// default, unless the pod sets them itself.
		if _, ok := sysctls["net.ipv4.ip_unprivileged_port_start"]; !ok {
			sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
		if _, ok := sysctls["net.ipv4.ping_group_range"]; !ok {
			sysctls["net.ipv4.ping_group_range"] = "0 2147483647"
		}
	}
	if len(sysctls) > 0 {
		l.Sysctl = sysctls
	}
	if sp := podSeccomp(ps); sp != nil && sp.Type == corev1.SeccompProfileTypeRuntimeDefault {
		l.Seccomp = runtimeDefaultSeccomp()
	}
	return s
}

func podMappings() []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: podUsernsHost, Size: 65536}}
}

func podSeccomp(ps *corev1.PodSpec) *corev1.SeccompProfile {
	if ps.SecurityContext == nil {
		return nil
	}
	return ps.SecurityContext.SeccompProfile
}

// runtimeDefaultSeccomp stands for containerd's default profile: an
// allow-list that denies by default. The checks read its default action;
// ward replaces it with its own when it hardens.
func runtimeDefaultSeccomp() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow}},
	}
}

// criMount is a mount the kubelet or containerd adds, with the manifest
// field it comes from.
type criMount struct {
	m     specs.Mount
	field string
}

func containerSpec(o *Object, n Node, ref containerRef, uid, sandboxID, podName, ns string, podAnn map[string]string) (*Container, error) {
	ps := &o.Template.Spec
	c := ref.c
	cf := o.Field(ref.field)
	out := &Container{Name: c.Name, Image: c.Image, Init: ref.init}
	out.Field = cf
	psc := ps.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	privileged := sc.Privileged != nil && *sc.Privileged

	ann := podAnnotations("container", sandboxID, podName, ns, uid, podAnn)
	ann[bundle.AnnotationContainerName] = c.Name
	ann[bundle.AnnotationImageName] = c.Image
	for k := range podAnn {
		out.origin(fieldKey("annotations", k), o.MetaField("annotations"))
	}
	out.origin(fieldKey("annotations", bundle.AnnotationImageName), cf+".image")
	out.origin(fieldKey("annotations", bundle.AnnotationSandboxNamespace), "metadata.namespace")

	p := &specs.Process{Cwd: "/", Args: append(slices.Clone(c.Command), c.Args...)}
	if c.WorkingDir != "" {
		p.Cwd = c.WorkingDir
		out.origin("process.cwd", cf+".workingDir")
	}
	// User: the container's runAsUser, else the pod's, else the image's.
	switch {
	case sc.RunAsUser != nil:
		p.User.UID = uint32(*sc.RunAsUser)
		out.origin("process.user", cf+".securityContext.runAsUser")
	case psc.RunAsUser != nil:
		p.User.UID = uint32(*psc.RunAsUser)
		out.origin("process.user", o.Field("securityContext.runAsUser"))
	default:
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if nonRoot {
			// The kubelet refuses to start an image whose user is root.
			p.User.UID = 65534
			out.origin("process.user", cf+".securityContext.runAsNonRoot")
			out.assume(AssumeImageConfig, cf+".securityContext.runAsUser", "the image's USER decides the user; runAsNonRoot makes the kubelet refuse root, so it is judged as a non-root user")
		} else {
			out.origin("process.user", cf+".securityContext.runAsUser")
			out.assume(AssumeImageConfig, cf+".securityContext.runAsUser", "no runAsUser: the image's USER decides, judged as root (uid 0)")
		}
	}
	if sc.RunAsGroup != nil {
		p.User.GID = uint32(*sc.RunAsGroup)
	} else if psc.RunAsGroup != nil {
		p.User.GID = uint32(*psc.RunAsGroup)
	}
	if c.WorkingDir == "" {
		out.assume(AssumeImageConfig, cf+".workingDir", "no workingDir: the image's WORKDIR decides, judged as \"/\"")
	}

	// Capabilities, as containerd's CRI plugin applies add and drop.
	if privileged {
		p.Capabilities = caps(capability.All())
		out.origin("process.capabilities", cf+".securityContext.privileged")
	} else {
		set := DefaultCapabilities()
		capField := cf + ".securityContext.capabilities"
		if sc.Capabilities != nil {
			add, drop := capNames(sc.Capabilities.Add), capNames(sc.Capabilities.Drop)
			if slices.Contains(add, "CAP_ALL") {
				set = capability.All()
			}
			if slices.Contains(drop, "CAP_ALL") {
				set = nil
			}
			for _, a := range add {
				if a != "CAP_ALL" && !slices.Contains(set, a) {
					set = append(set, a)
				}
			}
			set = slices.DeleteFunc(set, func(s string) bool { return slices.Contains(drop, s) })
			if len(sc.Capabilities.Add) > 0 {
				capField += ".add"
			}
		}
		p.Capabilities = caps(set)
		out.origin("process.capabilities", capField)
	}
	// The kubelet sets no_new_privs only for allowPrivilegeEscalation:
	// false.
	p.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && !privileged
	out.origin("process.noNewPrivileges", cf+".securityContext.allowPrivilegeEscalation")
	if n.AppArmor {
		p.ApparmorProfile = "cri-containerd.apparmor.d"
		if privileged || apparmorUnconfined(sc, psc) {
			p.ApparmorProfile = "unconfined"
		}
	}
	out.origin("process.apparmorProfile", cf+".securityContext.appArmorProfile")

	s := &specs.Spec{
		Version:     specs.Version,
		Process:     p,
		Root:        &specs.Root{Path: "rootfs", Readonly: sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
		Annotations: ann,
		Linux:       &specs.Linux{Resources: &specs.LinuxResources{}},
	}
	out.origin("root.readonly", cf+".securityContext.readOnlyRootFilesystem")
	out.Spec.Spec = s
	l := s.Linux

	// Namespaces: the sandbox's, joined by path; pid of its own unless
	// the pod shares one (hostPID, shareProcessNamespace).
	if ps.HostPID || (ps.ShareProcessNamespace != nil && *ps.ShareProcessNamespace) {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: placeholderSandboxNS + "pid"})
	} else {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	l.Namespaces = append(l.Namespaces,
		specs.LinuxNamespace{Type: specs.IPCNamespace, Path: placeholderSandboxNS + "ipc"},
		specs.LinuxNamespace{Type: specs.UTSNamespace, Path: placeholderSandboxNS + "uts"},
		specs.LinuxNamespace{Type: specs.MountNamespace},
		specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: placeholderSandboxNS + "net"},
	)
	if ps.HostUsers != nil && !*ps.HostUsers {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: placeholderSandboxNS + "user"})
		l.UIDMappings, l.GIDMappings = podMappings(), podMappings()
	}
	out.origin("linux.namespaces", o.Field("hostUsers"))

	// /proc masking: procMount Unmasked and privileged clear the lists.
	procField := cf + ".securityContext.procMount"
	switch {
	case privileged:
		procField = cf + ".securityContext.privileged"
	case sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount:
	default:
		l.MaskedPaths, l.ReadonlyPaths = defaultMasked(), defaultReadonly()
	}
	out.origin("linux.maskedPaths", procField)
	out.origin("linux.readonlyPaths", procField)

	// Seccomp: the container's profile, else the pod's, else the
	// kubelet's default.
	sp, spField := sc.SeccompProfile, cf+".securityContext.seccompProfile"
	if sp == nil && psc.SeccompProfile != nil {
		sp, spField = psc.SeccompProfile, o.Field("securityContext.seccompProfile")
	}
	out.origin("linux.seccomp", spField)
	switch {
	case privileged:
		out.origin("linux.seccomp", cf+".securityContext.privileged")
	case sp == nil:
		out.assume(AssumeSeccompDefault, cf+".securityContext.seccompProfile", "no seccompProfile: the kubelet's --seccomp-default decides, judged as Unconfined (its default)")
	case sp.Type == corev1.SeccompProfileTypeRuntimeDefault:
		l.Seccomp = runtimeDefaultSeccomp()
	case sp.Type == corev1.SeccompProfileTypeLocalhost:
		l.Seccomp = runtimeDefaultSeccomp()
		lp := ""
		if sp.LocalhostProfile != nil {
			lp = *sp.LocalhostProfile
		}
		out.assume(AssumeLocalhostSeccomp, spField, "Localhost profile "+strconv.Quote(lp)+" is a file on the node, judged as a deny-by-default profile")
	}

	// Devices: privileged containers get every host device and an
	// allow-all device cgroup rule.
	if privileged {
		l.Devices = []specs.LinuxDevice{{Path: "/dev/<every host device>", Type: "c"}}
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for _, k := range []string{"linux.devices", "linux.resources.devices"} {
			out.origin(k, cf+".securityContext.privileged")
		}
	} else {
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && q.Value() > 0 {
		v := q.Value()
		l.Resources.Memory = &specs.LinuxMemory{Limit: &v}
	} else {
		l.Resources.Memory = &specs.LinuxMemory{}
	}
	out.origin("linux.resources.memory", cf+".resources.limits.memory")
	out.origin("linux.resources.pids", cf+".resources")

	mounts, err := containerMounts(o, n, ref, uid, sandboxID, privileged)
	if err != nil {
		return nil, err
	}
	base := baseMounts(privileged)
	cg := specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}}
	if privileged {
		cg.Options[4] = "rw"
	}
	base = append(base, cg)
	for i := range base {
		if privileged && (base[i].Type == "sysfs" || base[i].Type == "cgroup") {
			out.origin("mounts["+strconv.Itoa(i)+"]", cf+".securityContext.privileged")
		}
	}
	s.Mounts = base
	for _, m := range mounts {
		out.origin("mounts["+strconv.Itoa(len(s.Mounts))+"]", m.field)
		s.Mounts = append(s.Mounts, m.m)
	}

	if ps.RuntimeClassName != nil && *ps.RuntimeClassName != "" {
		out.assume(AssumeRuntimeClass, o.Field("runtimeClassName"), "runtimeClassName "+strconv.Quote(*ps.RuntimeClassName)+": ward judges this pod only if that handler runs ward")
	}
	return out, nil
}

func apparmorUnconfined(sc *corev1.SecurityContext, psc *corev1.PodSecurityContext) bool {
	if sc.AppArmorProfile != nil {
		return sc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined
	}
	return psc.AppArmorProfile != nil && psc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined
}

func capNames(cs []corev1.Capability) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, "CAP_"+CapabilityName(string(c)))
	}
	return out
}

// CapabilityName is a manifest's capability name as ward reads it:
// "sys_admin" and "CAP_SYS_ADMIN" are both SYS_ADMIN. (containerd itself
// would prefix the latter once more and runc refuse it: either way the
// container does not run with less.)
func CapabilityName(c string) string {
	return strings.TrimPrefix(strings.ToUpper(c), "CAP_")
}

// kubeletPluginDir names the kubelet's directory for a volume's plugin.
func kubeletPluginDir(v *corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "kubernetes.io~empty-dir"
	case v.ConfigMap != nil:
		return "kubernetes.io~configmap"
	case v.Secret != nil:
		return "kubernetes.io~secret"
	case v.Projected != nil:
		return "kubernetes.io~projected"
	case v.DownwardAPI != nil:
		return "kubernetes.io~downward-api"
	}
	return "kubernetes.io~csi"
}

// containerMounts are the kubelet's mounts for the container's volumes, its
// own files and containerd's, in the order containerd puts them: sorted by
// destination depth, stable.
func containerMounts(o *Object, n Node, ref containerRef, uid, sandboxID string, privileged bool) ([]criMount, error) {
	ps := &o.Template.Spec
	c := ref.c
	cf := o.Field(ref.field)
	podDir := path.Join(n.KubeletRoot, "pods", uid)
	var ms []criMount
	opts := func(ro bool, prop *corev1.MountPropagationMode) []string {
		o := []string{"rbind", "rprivate", "rw"}
		if prop != nil {
			switch *prop {
			case corev1.MountPropagationBidirectional:
				o[1] = "rshared"
			case corev1.MountPropagationHostToContainer:
				o[1] = "rslave"
			}
		}
		if ro {
			o[2] = "ro"
		}
		return o
	}
	for i, vm := range c.VolumeMounts {
		field := cf + ".volumeMounts[" + strconv.Itoa(i) + "]"
		vi := slices.IndexFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if vi < 0 {
			return nil, fmt.Errorf("%s %s: %s: no volume named %q in %s", o.Kind, o.Name, field, vm.Name, o.Field("volumes"))
		}
		v := &ps.Volumes[vi]
		var src string
		if hp := v.HostPath; hp != nil {
			src = path.Clean(hp.Path)
			if vm.SubPath != "" {
				// The kubelet binds the subpath through its own
				// directory; on the host it is this path.
				src = path.Join(src, vm.SubPath)
			}
			field = o.Field("volumes[" + strconv.Itoa(vi) + "].hostPath.path")
		} else {
			src = path.Join(podDir, "volumes", kubeletPluginDir(v), v.Name)
			if vm.SubPath != "" {
				src = path.Join(podDir, "volume-subpaths", v.Name, c.Name, strconv.Itoa(i))
			}
		}
		ms = append(ms, criMount{specs.Mount{Destination: vm.MountPath, Type: "bind", Source: src, Options: opts(vm.ReadOnly, vm.MountPropagation)}, field})
	}
	// The service account token, which admission adds to every container
	// unless the pod opts out.
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount"
		}) {
			ms = append(ms, criMount{specs.Mount{Destination: "/var/run/secrets/kubernetes.io/serviceaccount", Type: "bind",
				Source: path.Join(podDir, "volumes/kubernetes.io~projected/kube-api-access"), Options: opts(true, nil)}, cf})
		}
	}
	has := func(dst string) bool {
		return slices.ContainsFunc(ms, func(m criMount) bool { return path.Clean(m.m.Destination) == dst })
	}
	if !has("/etc/hosts") {
		ms = append(ms, criMount{specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: path.Join(podDir, "etc-hosts"), Options: opts(false, nil)}, cf})
	}
	tl := c.TerminationMessagePath
	if tl == "" {
		tl = "/dev/termination-log"
	}
	if !has(tl) {
		ms = append(ms, criMount{specs.Mount{Destination: tl, Type: "bind", Source: path.Join(podDir, "containers", c.Name, "termination-log"), Options: opts(false, nil)}, cf})
	}
	// containerd's own per-sandbox files.
	sbRoot := n.sandboxDir(n.ContainerdRoot, sandboxID)
	if !has("/etc/hostname") {
		ms = append(ms, criMount{specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: path.Join(sbRoot, "hostname"), Options: opts(false, nil)}, cf})
	}
	if !has("/etc/resolv.conf") {
		ms = append(ms, criMount{specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: path.Join(sbRoot, "resolv.conf"), Options: opts(false, nil)}, cf})
	}
	if !has("/dev/shm") {
		shm, field := path.Join(n.sandboxDir(n.ContainerdState, sandboxID), "shm"), cf
		if ps.HostIPC {
			shm, field = "/dev/shm", o.Field("hostIPC")
		}
		ms = append(ms, criMount{specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shm, Options: opts(false, nil)}, field})
	}
	sort.SliceStable(ms, func(i, j int) bool { return depth(ms[i].m.Destination) < depth(ms[j].m.Destination) })
	return ms, nil
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// FieldOf returns the manifest field a finding of c points at: for a
// finding carried from the pod's sandbox, the pod-level field that caused
// it; otherwise where c's spec field came from.
func (p *Pod) FieldOf(c *Container, id, ociPath string, fromPod bool) string {
	o := p.Object
	switch id {
	case policy.IDHostPID:
		return o.Field("hostPID")
	case policy.IDHostIPC:
		return o.Field("hostIPC")
	case policy.IDHostNetwork, policy.IDHostUTS:
		return o.Field("hostNetwork")
	case policy.IDHostUser:
		return o.Field("hostUsers")
	case policy.IDHostCgroup:
		// containerd gives no pod a cgroup namespace on cgroup v1 hosts;
		// no manifest field asks for one.
		return c.Field
	case policy.IDUntrustedWorkload:
		if strings.Contains(ociPath, bundle.AnnotationSandboxNamespace) {
			return "metadata.namespace"
		}
	}
	if fromPod {
		return p.Sandbox.Origin(ociPath)
	}
	return c.Origin(ociPath)
}
