package policy

import (
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file judges the host objects a spec names (mount sources, overlay
// directories, the root filesystem, namespaces, hooks) by what they are on
// this node: the node facts' identities when the front door gathered them,
// the paths' spelling otherwise and as well. An identity finding never
// replaces a lexical one: both must clear.

// kernelFS are filesystem types that hand the kernel's or the host's
// interfaces to whoever mounts them; none belongs in a container.
func kernelFS(typ string) bool {
	switch typ {
	case "debugfs", "tracefs", "securityfs", "bpf", "configfs", "efivarfs", "binfmt_misc",
		"fusectl", "pstore", "devtmpfs", "nsfs", "selinuxfs", "rpc_pipefs", "autofs", "hugetlbfs":
		return true
	}
	return false
}

// pseudoFS are filesystem types whose source is a label, not a host object.
func pseudoFS(typ string) bool {
	switch typ {
	case "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "shm", "ramfs", "none", "":
		return true
	}
	return kernelFS(typ)
}

// checkMountObject judges one mount of any type beyond the bind checks.
func (s *scan) checkMountObject(i int, m *specs.Mount) {
	dest := path.Clean(m.Destination)
	switch {
	case m.Type == "proc" && dest != "/proc":
		s.emit(IDKernelFSMount, mountField(i, "type"), "a second proc mounted at "+m.Destination+": masked and read-only paths cover /proc only")
	case m.Type == "sysfs" && dest != "/sys":
		s.emit(IDKernelFSMount, mountField(i, "type"), "a second sysfs mounted at "+m.Destination+": ward's read-only /sys covers /sys only")
	case kernelFS(m.Type):
		s.emit(IDKernelFSMount, mountField(i, "type"), m.Type+" mounted at "+m.Destination)
	case m.Type == "overlay":
		s.checkOverlay(i, m)
	}
	if slices.ContainsFunc(m.Options, func(o string) bool { return o == "shared" || o == "rshared" }) && isBind(m) {
		s.emit(IDMountPropagationShared, mountField(i, "options"), "bind of "+m.Source+" at "+m.Destination+" propagates mounts back to the host")
	}
	s.checkIDMappings(mountField(i, "uidMappings"), m.UIDMappings)
	s.checkIDMappings(mountField(i, "gidMappings"), m.GIDMappings)
	if isBind(m) || m.Type == "overlay" || pseudoFS(m.Type) {
		return
	}
	// A filesystem type with a path source: the kernel opens the source as
	// a block device.
	if o, ok := s.in.Node.object(m.Source); ok {
		if o.Kind == KindBlock {
			s.emit(IDBlockDeviceMount, mountField(i, "source"), m.Type+" from "+m.Source+" = "+describeObject(o)+", a host block device")
		}
		return
	}
	if p := path.Clean(m.Source); path.IsAbs(p) && within(p, "/dev") && !within(p, "/dev/shm") && !within(p, "/dev/pts") && !within(p, "/dev/mqueue") {
		s.emit(IDBlockDeviceMount, mountField(i, "source"), m.Type+" from "+m.Source+", a host device")
	}
}

// checkOverlay judges an overlay mount's directories like bind sources:
// lowerdir is read, upperdir and workdir are written.
func (s *scan) checkOverlay(i int, m *specs.Mount) {
	for _, o := range m.Options {
		key, val, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		var dirs []string
		writable := false
		switch key {
		case "lowerdir":
			dirs = strings.Split(val, ":")
		case "upperdir", "workdir":
			dirs, writable = []string{val}, true
		default:
			continue
		}
		for _, d := range dirs {
			if d == "" {
				continue
			}
			s.judgeHostDir(mountField(i, "options"), d, key+"="+d+" of the overlay at "+m.Destination, !writable)
		}
	}
}

// judgeHostDir reports a host directory the spec hands over outside a bind
// mount (an overlay layer): sensitive by identity or by spelling, else a
// host path unless it is the container's own.
func (s *scan) judgeHostDir(field, p, what string, readonly bool) {
	src := hostPath(resolved(p, s.in))
	if path.IsAbs(src) && s.node.owner(src, s.in) != hostOwned {
		return
	}
	dir := ""
	if o, ok := s.in.Node.object(p); ok {
		if so, ok := s.in.Node.exposes(o, true); ok {
			dir = so.Path + " (as " + describeObject(o) + ")"
		}
	}
	if dir == "" && path.IsAbs(src) {
		dir = sensitiveExposed(src, s.node.sensitive)
	}
	if dir != "" {
		if readonly {
			s.emit(IDSensitiveHostPath, field, what+" exposes "+dir+" (read-only)")
		} else {
			s.emit(IDSensitiveHostPathWritable, field, what+" exposes "+dir+" (writable)")
		}
	}
	s.emit(IDHostPathMount, field, what)
}

// checkBindObject judges a bind source by identity: the node facts say
// what it is, whatever its spelling.
func (s *scan) checkBindObject(i int, m *specs.Mount, own bool) {
	o, ok := s.in.Node.object(m.Source)
	if !ok {
		return
	}
	field := mountField(i, "source")
	what := m.Source + " = " + describeObject(o) + " at " + m.Destination
	if o.Kind == KindSocket {
		switch {
		case ManagerProcess(o.Listener):
			s.emit(IDContainerSocketMount, field, what+", listened on by "+o.Listener)
		case o.Listener != "":
			s.emit(IDHostSocketMount, field, what+", listened on by "+o.Listener)
		default:
			s.emit(IDHostSocketMount, field, what+", listener not found")
		}
		return
	}
	if o.Kind == KindBlock {
		s.emit(IDBlockDeviceMount, field, what+", a host block device")
		return
	}
	if isLauncherMount(m, hostPath(resolved(m.Source, s.in))) {
		return
	}
	// A volume the kubelet made for this pod can still be a host directory
	// in disguise: a hostPath volume mounted with subPath reaches the node
	// as a bind of pods/<uid>/volume-subpaths/..., whose identity is the
	// host directory's. An own source is judged by what it is (a sensitive
	// directory, or one holding it), not by what lies below it.
	if so, ok := s.in.Node.exposes(o, !own); ok {
		if isReadonly(m) {
			s.emit(IDSensitiveHostPath, field, what+" is or holds "+so.Path+" (read-only)")
		} else {
			s.emit(IDSensitiveHostPathWritable, field, what+" is or holds "+so.Path+" (writable)")
		}
	}
}

// ManagerProcess reports whether a socket's listener is a container
// manager or the kubelet: reaching it starts containers on the node.
func ManagerProcess(comm string) bool {
	switch comm {
	case "dockerd", "containerd", "crio", "cri-dockerd", "podman", "kubelet", "buildkitd",
		"k3s", "k3s-server", "k3s-agent", "rke2", "lxd", "incusd", "conmon", "nerdctl":
		return true
	}
	return strings.HasPrefix(comm, "containerd-shim")
}

// checkRoot judges root.path: the host's root or a sensitive directory is
// refused; a root outside the bundle and the managers' rootfs directories
// is not proved a container root, so ward never chowns it.
func (s *scan) checkRoot() {
	r := s.in.Spec.Root
	if r == nil || r.Path == "" {
		return
	}
	res := resolved(r.Path, s.in)
	own := !path.IsAbs(res)
	if f := s.in.Node; f != nil && f.Bundle != "" && path.IsAbs(res) && within(path.Clean(res), path.Clean(f.Bundle)) {
		own = true
	}
	if path.IsAbs(res) {
		c := hostPath(res)
		for _, d := range append(slices.Clip(s.node.rootfsDirs), s.node.runtimeDirs...) {
			if within(c, d) && c != d {
				own = true
			}
		}
		if d := sensitiveExposed(c, s.node.sensitive); d != "" && (!own || within(d, c)) {
			s.emit(IDRootfsHost, "root.path", r.Path+" resolves to "+c+", which is or holds "+d)
			return
		}
	}
	if o, ok := s.in.Node.object(r.Path); ok {
		// A root below a sensitive subtree is fine when it is a manager's
		// own (Docker's overlay under /var/lib/docker); being a sensitive
		// directory or one above it never is.
		if so, ok := s.in.Node.exposes(o, !own); ok {
			s.emit(IDRootfsHost, "root.path", r.Path+" = "+describeObject(o)+", which is or holds "+so.Path)
			return
		}
	}
	if !own {
		s.emit(IDRootfsUnproven, "root.path", r.Path+" is outside the bundle and node.rootfsDirs")
	}
}

// checkHooks refuses every hook that is not on the node's allow-list, in
// every hook kind: hooks run on the host as root, on every backend.
func (s *scan) checkHooks() {
	h := s.in.Spec.Hooks
	if h == nil {
		return
	}
	kinds := []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", h.Prestart}, {"createRuntime", h.CreateRuntime}, {"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer}, {"poststart", h.Poststart}, {"poststop", h.Poststop},
	}
	for _, k := range kinds {
		for i, hk := range k.hooks {
			if s.hookAllowed(&hk) {
				continue
			}
			what := hk.Path
			if res := resolved(hk.Path, s.in); res != hk.Path {
				what += " (resolves to " + res + ")"
			}
			if len(hk.Args) > 0 {
				what += " " + strings.Join(hk.Args, " ")
			}
			s.emit(IDHookNotAllowed, "hooks."+k.name+"["+strconv.Itoa(i)+"].path", what)
		}
	}
}

func (s *scan) hookAllowed(hk *specs.Hook) bool {
	o, known := s.in.Node.object(hk.Path)
	res := hostPath(resolved(hk.Path, s.in))
	for _, r := range s.node.hooks {
		if r.Arg0 != "" && (len(hk.Args) == 0 || hk.Args[0] != r.Arg0) {
			continue
		}
		if known {
			if p, ok := s.in.Node.hookAllowed(o.ID); ok && hostPath(p) == hostPath(r.Path) {
				return true
			}
			continue
		}
		if res == hostPath(r.Path) {
			return true
		}
	}
	return false
}

// checkNamespaceObject judges a namespace joined by path by its nsfs
// inode: the host's namespace under any path is a host namespace, and a
// pod's app container must join its own sandbox's.
func (s *scan) checkNamespaceObject(field string, ns specs.LinuxNamespace, hostID string) bool {
	o, ok := s.in.Node.object(ns.Path)
	if !ok {
		return false
	}
	f := s.in.Node
	if id, ok := f.HostNamespaces[ns.Type]; ok && id == o.ID {
		s.emit(hostID, field, "joins "+ns.Path+" = "+string(ns.Type)+" namespace "+o.ID.String()+", the host's")
		return true
	}
	if id, ok := f.SandboxNamespaces[ns.Type]; ok && id != o.ID {
		s.emit(IDNamespaceForeign, field, "joins "+ns.Path+" = "+string(ns.Type)+" namespace "+o.ID.String()+", not its pod sandbox's ("+id.String()+")")
		return true
	}
	return false
}
