//go:build linux

package nodefacts

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/policy"
)

// Supported: this is a Linux node, whose host objects Gather looks up.
const Supported = true

// OwnNamespaces returns the calling process's namespaces. A front door
// calls it when it starts, before any thread of it enters a container's
// namespace: shims and runtimes start in the node's.
func OwnNamespaces() map[specs.LinuxNamespaceType]policy.ObjectID {
	return namespaces("/proc/self")
}

// maxDepth bounds a walk up the directory tree.
const maxDepth = 64

// Gather stats every host path s names, resolving relative ones against
// bundleDir as the runtime does. It never fails: a path it cannot stat is
// left out (or marked missing), and the checks judge it by spelling.
func Gather(s *specs.Spec, bundleDir string, p *policy.Policy, o Options) *policy.NodeFacts {
	proc := o.Proc
	if proc == "" {
		proc = "/proc"
	}
	f := &policy.NodeFacts{Bundle: bundleDir, Objects: map[string]policy.HostObject{}}
	add := func(spelled string) {
		if spelled == "" {
			return
		}
		if _, ok := f.Objects[spelled]; ok {
			return
		}
		p := spelled
		if !filepath.IsAbs(p) {
			if bundleDir == "" {
				return
			}
			p = filepath.Join(bundleDir, p)
		}
		f.Objects[spelled] = object(p, proc)
	}
	if s.Root != nil {
		add(s.Root.Path)
	}
	for _, m := range s.Mounts {
		switch {
		case m.Type == "overlay":
			for _, opt := range m.Options {
				k, v, _ := strings.Cut(opt, "=")
				switch k {
				case "lowerdir":
					for _, d := range strings.Split(v, ":") {
						add(d)
					}
				case "upperdir", "workdir":
					add(v)
				}
			}
		case filepath.IsAbs(m.Source) || bundle.IsBindMount(&m):
			add(m.Source)
		}
	}
	if s.Hooks != nil {
		for _, hs := range [][]specs.Hook{s.Hooks.Prestart, s.Hooks.CreateRuntime, s.Hooks.CreateContainer,
			s.Hooks.StartContainer, s.Hooks.Poststart, s.Hooks.Poststop} {
			for _, h := range hs {
				add(h.Path)
			}
		}
	}
	if s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			if ns.Path != "" {
				add(ns.Path)
				if ob := f.Objects[ns.Path]; ob.Kind != policy.KindMissing {
					ob.Kind = policy.KindNamespace
					ob.Ancestors = nil
					f.Objects[ns.Path] = ob
				}
			}
		}
	}
	for _, d := range p.SensitivePaths() {
		id, _, ok := stat(d.Path)
		if !ok {
			continue
		}
		d.ID = id
		d.Ancestors = ancestors(d.Path)
		f.Sensitive = append(f.Sensitive, d)
	}
	for _, h := range p.Node.Hooks {
		if id, _, ok := stat(h.Path); ok {
			f.Hooks = append(f.Hooks, policy.HookObject{Path: h.Path, ID: id})
		}
	}
	// PID 1's namespaces are the node's. A front door that may not read
	// them (no ptrace access to PID 1) gives its own, taken when it
	// started: later, a thread of it may have entered a pod's namespace.
	f.HostNamespaces = namespaces(filepath.Join(proc, "1"))
	if f.HostNamespaces == nil {
		f.HostNamespaces = o.Node
	}
	if o.SandboxPID > 0 {
		f.SandboxNamespaces = namespaces(filepath.Join(proc, strconv.Itoa(o.SandboxPID)))
	}
	return f
}

// object stats p as the kernel reaches it (following every link, magic
// /proc links included) and walks the directories above it.
func object(p, proc string) policy.HostObject {
	id, mode, ok := stat(p)
	if !ok {
		return policy.HostObject{Kind: policy.KindMissing}
	}
	o := policy.HostObject{ID: id, Kind: kindOf(mode), WorldWritable: mode.Perm()&0o002 != 0}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		o.Resolved = r
	}
	dir := p
	if o.Kind != policy.KindDir {
		// ".." of a file is not a directory: walk from the one holding it,
		// spelled as in the spec so that magic links are followed.
		dir = filepath.Dir(p)
		if pid, _, ok := stat(dir); ok {
			o.Ancestors = append(o.Ancestors, pid)
		}
	}
	o.Ancestors = append(o.Ancestors, ancestors(dir)...)
	if o.Kind == policy.KindSocket {
		o.Listener = listener(id, proc)
	}
	return o
}

// ancestors are the identities of dir/.., dir/../.., up to the root (whose
// ".." is itself).
func ancestors(dir string) []policy.ObjectID {
	var out []policy.ObjectID
	prev, _, ok := stat(dir)
	if !ok {
		return nil
	}
	up := dir
	for range maxDepth {
		up += "/.."
		id, _, ok := stat(up)
		if !ok || id == prev {
			break
		}
		out = append(out, id)
		prev = id
	}
	return out
}

func kindOf(m os.FileMode) policy.Kind {
	switch {
	case m.IsDir():
		return policy.KindDir
	case m&os.ModeSocket != 0:
		return policy.KindSocket
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice != 0:
		return policy.KindChar
	case m&os.ModeDevice != 0:
		return policy.KindBlock
	case m&os.ModeNamedPipe != 0:
		return policy.KindFIFO
	}
	return policy.KindFile
}

// namespaces reads the namespace identities of the process at dir.
func namespaces(dir string) map[specs.LinuxNamespaceType]policy.ObjectID {
	out := map[specs.LinuxNamespaceType]policy.ObjectID{}
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace,
		specs.IPCNamespace, specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace} {
		if id, _, ok := stat(filepath.Join(dir, "ns", nsFile(t))); ok {
			out[t] = id
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// nsFile is the name of a namespace type's file under /proc/<pid>/ns.
func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	}
	return string(t)
}

// Inhabited reports whether a process other than the caller lives in the
// namespace of type t whose identity is id: whether a namespace a spec
// joins by path is already some other container's (a Docker
// --network container:X, a Podman pod's infra container, a CRI pod's
// pause process), or one only pinned by a bind mount that the container
// will be first to live in (CNI's, Podman's own for a new container).
// Only thread-group leaders are looked at: a thread that entered the
// namespace for a moment (a CNI plugin's, a front door writing a sysctl)
// is not a tenant. proc is procfs's mount point, "" for /proc.
func Inhabited(t specs.LinuxNamespaceType, id policy.ObjectID, proc string) bool {
	if proc == "" {
		proc = "/proc"
	}
	self := strconv.Itoa(os.Getpid())
	file := nsFile(t)
	for _, pid := range processes(proc) {
		if pid == self {
			continue
		}
		if got, _, ok := stat(filepath.Join(proc, pid, "ns", file)); ok && got == id {
			return true
		}
	}
	return false
}

// processes lists proc's process directories by name (their PIDs); none
// when proc cannot be read.
func processes(proc string) []string {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var pids []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
