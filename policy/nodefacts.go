package policy

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ObjectID is a host object's identity: the device and inode that stat
// gives it. Two paths name the same object exactly when their IDs are
// equal, however they are spelled (symbolic links, "..", bind aliases,
// /proc/<pid>/root).
type ObjectID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (o ObjectID) String() string {
	return strconv.FormatUint(o.Dev, 10) + ":" + strconv.FormatUint(o.Ino, 10)
}

// Kind is a host object's file type.
type Kind string

const (
	KindDir     Kind = "dir"
	KindFile    Kind = "file"
	KindSocket  Kind = "socket"
	KindBlock   Kind = "block"
	KindChar    Kind = "char"
	KindFIFO    Kind = "fifo"
	KindMissing Kind = "missing"
	// KindNamespace is an nsfs file: a namespace reached by path.
	KindNamespace Kind = "namespace"
)

// HostObject is what one path in a spec names on this node, resolved the
// way the runtime will resolve it.
type HostObject struct {
	// Resolved is the path after symbolic links, "" when unknown.
	Resolved string   `json:"resolved,omitempty"`
	ID       ObjectID `json:"id"`
	Kind     Kind     `json:"kind"`
	// Ancestors are the IDs of the directories above the object (its
	// "..", then that one's "..", up to the root), as the kernel walks
	// them: a bind alias of /etc has /etc's children, and its parent
	// chain tells whether it sits below a sensitive directory.
	Ancestors []ObjectID `json:"ancestors,omitempty"`
	// Listener names the process listening on a unix socket (its command
	// name), "" when it could not be found.
	Listener string `json:"listener,omitempty"`
	// WorldWritable is set for sockets and directories anyone may write.
	WorldWritable bool `json:"worldWritable,omitempty"`
}

// SensitiveObject is a sensitive directory as found on this node.
type SensitiveObject struct {
	Path      string     `json:"path"`
	ID        ObjectID   `json:"id"`
	Subtree   bool       `json:"subtree,omitempty"`
	Ancestors []ObjectID `json:"ancestors,omitempty"`
}

// NodeFacts are the facts about this node one evaluation needs: what each
// host path the spec names is, and the identities it is compared with.
// A front door gathers them (package nodefacts) just before evaluating;
// evaluation itself stays pure, and tests supply made-up facts. Without
// facts (nil) the checks fall back to the paths' spelling.
type NodeFacts struct {
	// Bundle is the bundle directory relative paths are resolved against.
	Bundle string `json:"bundle,omitempty"`
	// Objects maps each path the spec names (mount sources and overlay
	// directories, root.path, namespace paths, hook paths), as spelled in
	// the spec, to the object it reaches.
	Objects map[string]HostObject `json:"objects,omitempty"`
	// Sensitive are the policy's sensitive directories that exist here.
	Sensitive []SensitiveObject `json:"sensitive,omitempty"`
	// HostNamespaces are the initial namespaces (PID 1's), by type.
	HostNamespaces map[specs.LinuxNamespaceType]ObjectID `json:"hostNamespaces,omitempty"`
	// SandboxNamespaces are the pod sandbox's namespaces, by type, when the
	// front door knows the sandbox's process (the shim does).
	SandboxNamespaces map[specs.LinuxNamespaceType]ObjectID `json:"sandboxNamespaces,omitempty"`
	// Hooks are the policy's allowed hook binaries found on this node.
	Hooks []HookObject `json:"hooks,omitempty"`
}

// HookObject is an allowed hook binary found on this node.
type HookObject struct {
	Path string   `json:"path"`
	ID   ObjectID `json:"id"`
}

// object returns what p names, when known.
func (f *NodeFacts) object(p string) (HostObject, bool) {
	if f == nil {
		return HostObject{}, false
	}
	o, ok := f.Objects[p]
	return o, ok && o.Kind != "" && o.Kind != KindMissing
}

// HostNamespace reports whether the namespace of type t that path (as
// spelled in the spec) reaches is the host's, and whether the facts know:
// known is false when the path could not be resolved or the host's
// namespace of that type is unknown.
func (f *NodeFacts) HostNamespace(t specs.LinuxNamespaceType, path string) (host, known bool) {
	o, ok := f.object(path)
	if !ok || o.Kind != KindNamespace {
		return false, false
	}
	id, ok := f.HostNamespaces[t]
	if !ok {
		return false, false
	}
	return id == o.ID, true
}

// hookAllowed reports whether the hook binary at id is on the allow-list.
func (f *NodeFacts) hookAllowed(id ObjectID) (string, bool) {
	if f == nil {
		return "", false
	}
	for _, h := range f.Hooks {
		if h.ID == id {
			return h.Path, true
		}
	}
	return "", false
}

// exposes returns the sensitive directory that mounting o hands over: o is
// that directory, a directory above it, or, with below and for a subtree
// directory, a directory below it.
func (f *NodeFacts) exposes(o HostObject, below bool) (SensitiveObject, bool) {
	if f == nil {
		return SensitiveObject{}, false
	}
	for _, s := range f.Sensitive {
		if s.ID == o.ID {
			return s, true
		}
	}
	for _, s := range f.Sensitive {
		for _, a := range s.Ancestors {
			if a == o.ID {
				return s, true
			}
		}
		if s.Subtree && below {
			for _, a := range o.Ancestors {
				if a == s.ID {
					return s, true
				}
			}
		}
	}
	return SensitiveObject{}, false
}

// SensitivePaths are the directories the node-fact gatherer stats: the
// policy's sensitive set, with the node's kubelet root.
func (p *Policy) SensitivePaths() []SensitiveObject {
	var out []SensitiveObject
	for _, d := range sensitiveDirs() {
		out = append(out, SensitiveObject{Path: d.path, Subtree: d.subtree})
	}
	if k := hostPath(p.Node.KubeletRoot); k != "/var/lib/kubelet" {
		out = append(out, SensitiveObject{Path: k, Subtree: true})
	}
	return out
}

func describeObject(o HostObject) string {
	s := string(o.Kind) + " " + o.ID.String()
	if o.Resolved != "" {
		s = o.Resolved + " (" + s + ")"
	}
	return s
}
