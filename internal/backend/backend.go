// Package backend says how a decided container runs: which OCI runtime
// binary, with which flags, or which containerd shim. Backends are data, one
// table entry each (Builtin, plus the node configuration's own entries), and
// the front doors switch on an entry's properties, never on its name: a new
// backend is one entry (and a doctor check), not an `if` in every door.
//
// Binaries are resolved up front, so that a missing sandbox runtime fails
// closed, with a message naming the binary and the rule that chose it,
// instead of the container silently running somewhere weaker.
package backend

import (
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/ward-runtime/ward/policy"
)

// Kind is how a backend is started.
type Kind string

const (
	// OCIRuntime is a binary with runc's command line (runc, crun, runsc):
	// any front door can run it.
	OCIRuntime Kind = "oci-runtime"
	// ContainerdShim is a containerd shim v2 that replaces ward's own for
	// the whole pod (Kata): only ward's shim can hand a pod to it, at
	// `shim start`, before any task exists.
	ContainerdShim Kind = "containerd-shim"
)

// Enforces says which of ward's protections take effect on a backend. A
// protection a backend does not enforce is left out of the rewrite or named
// in a note, so that no report implies a protection that is not in force.
type Enforces struct {
	// Landlock: the kernel the workload talks to implements Landlock
	// (gVisor's does not).
	Landlock bool `yaml:"landlock,omitempty" json:"landlock"`
	// Userns: ward gives the container a user namespace of its own. A
	// sandbox with its own kernel is its own boundary and is not remapped.
	Userns bool `yaml:"userns,omitempty" json:"userns"`
	// Seccomp: ward's seccomp baseline filters the workload's syscalls.
	Seccomp bool `yaml:"seccomp,omitempty" json:"seccomp"`
}

// Spec is one backend.
type Spec struct {
	// Name is what policy rules call the backend (`backend: gvisor`).
	Name policy.Backend `yaml:"-" json:"name"`
	Kind Kind           `yaml:"kind,omitempty" json:"kind"`
	// Binary is the runtime's or the shim's binary: a name looked up in
	// PATH, or an absolute path.
	Binary string `yaml:"binary,omitempty" json:"binary"`
	// Flags are global flags given before the subcommand, e.g.
	// ["--platform=systrap"].
	Flags []string `yaml:"flags,omitempty" json:"flags,omitempty"`
	// Unsupported lists runc flags the runtime lacks (without dashes);
	// ward-runtime drops them from what it passes on. They only tune how
	// runc sets up the container on the host, which a sandbox runtime
	// replaces altogether.
	Unsupported []string `yaml:"unsupported,omitempty" json:"unsupported,omitempty"`
	// Root is the runtime's state directory; "" means a directory named
	// StateName under the front door's own state root.
	Root string `yaml:"root,omitempty" json:"root,omitempty"`
	// StateName names the runtime's state directory under a front door's
	// state root when Root is "" (runc's is "runc", runsc's "runsc"): two
	// runtimes' state files differ, and each must find only its own.
	StateName string `yaml:"stateName,omitempty" json:"stateName,omitempty"`
	// Sandbox is true when the workload runs under a kernel of the
	// backend's own (gVisor's Sentry, a VM), which is then its boundary.
	Sandbox bool `yaml:"sandbox,omitempty" json:"sandbox"`
	// Enforces lists ward's protections that take effect on it.
	Enforces Enforces `yaml:"enforces,omitempty" json:"enforces"`
	// Dialect is the command line the runtime speaks, for an OCI runtime
	// ("" is DialectRunc).
	Dialect Dialect `yaml:"dialect,omitempty" json:"dialect,omitempty"`
}

// Dialect is how far an OCI runtime's command line and behaviour follow
// runc's.
type Dialect string

const (
	// DialectRunc: runc's flags, one directory per container under --root
	// (runc, crun).
	DialectRunc Dialect = "runc"
	// DialectRunsc: gVisor's runsc. It takes --rootless as a boolean and
	// lacks the flags in Unsupported; it is asked (`state`) whether it
	// still has a container; it cannot restore runc checkpoints; a pod's app
	// container binds its stdio at start, not create, and its pid file
	// names the sandbox, so the shim puts a wrapper between runc's shim
	// code and it (shim/runscwrap.go); after a sandbox exits it answers a
	// kill with "sandbox is not running"; and it pins a null network
	// namespace in its root, released when the root's last container goes.
	DialectRunsc Dialect = "runsc"
)

// Runsc reports whether the backend speaks runsc's dialect.
func (s *Spec) Runsc() bool { return s.Dialect == DialectRunsc }

// Builtin is ward's own table: runc for hardened containers, gVisor and
// Kata for sandboxed ones.
func Builtin() Table {
	return Table{
		policy.Runc: {
			Name: policy.Runc, Kind: OCIRuntime, Binary: "runc", StateName: "runc", Dialect: DialectRunc,
			Enforces: Enforces{Landlock: true, Userns: true, Seccomp: true},
		},
		policy.GVisor: {
			Name: policy.GVisor, Kind: OCIRuntime, Binary: "runsc", StateName: "runsc",
			Flags:       []string{"--platform=systrap"},
			Unsupported: []string{"no-pivot", "no-new-keyring", "pidfd-socket", "preserve-fds", "keep", "no-subreaper", "cgroup", "ignore-paused"},
			Sandbox:     true,
			Enforces:    Enforces{Seccomp: true},
			Dialect:     DialectRunsc,
		},
		policy.Kata: {
			Name: policy.Kata, Kind: ContainerdShim, Binary: "containerd-shim-kata-v2",
			Sandbox: true,
		},
	}
}

// Table maps backend names to their entries.
type Table map[policy.Backend]Spec

// Names lists the table's backends, sorted.
func (t Table) Names() []string {
	out := make([]string, 0, len(t))
	for n := range t {
		out = append(out, string(n))
	}
	sort.Strings(out)
	return out
}

// Merge returns t with each entry of over laid on top: a field over sets
// replaces t's, a name t lacks is a new backend. A new backend must say its
// kind and binary.
func (t Table) Merge(over map[string]Spec) (Table, error) {
	out := make(Table, len(t)+len(over))
	for n, s := range t {
		out[n] = s.clone()
	}
	for _, name := range sortedKeys(over) {
		o := over[name]
		n := policy.Backend(name)
		if !validName(name) {
			return nil, fmt.Errorf("backends.%s: a backend name is lower-case letters, digits and '-'", name)
		}
		s, known := out[n]
		if !known {
			if o.Kind != OCIRuntime && o.Kind != ContainerdShim {
				return nil, fmt.Errorf("backends.%s.kind: a new backend needs kind %s or %s, got %q", name, OCIRuntime, ContainerdShim, o.Kind)
			}
			if o.Binary == "" {
				return nil, fmt.Errorf("backends.%s.binary: a new backend needs its binary", name)
			}
			s = Spec{Name: n, StateName: name}
		}
		if o.Kind != "" && known && o.Kind != s.Kind {
			return nil, fmt.Errorf("backends.%s.kind: %s is built in as %s", name, name, s.Kind)
		}
		if known && (o.Sandbox || o.Enforces != (Enforces{}) || o.Dialect != "") {
			return nil, fmt.Errorf("backends.%s: sandbox, enforces and dialect are facts about a built-in backend, not settings; add a backend of another name to describe another runtime", name)
		}
		if o.Kind != "" {
			s.Kind = o.Kind
		}
		if o.Binary != "" {
			s.Binary = o.Binary
		}
		if o.Flags != nil {
			s.Flags = slices.Clone(o.Flags)
		}
		if o.Unsupported != nil {
			s.Unsupported = slices.Clone(o.Unsupported)
		}
		if o.Root != "" {
			s.Root = o.Root
		}
		if o.StateName != "" {
			s.StateName = o.StateName
		}
		if !known {
			// Properties of built-in backends are facts about them, not
			// settings; a new backend states its own.
			s.Sandbox, s.Enforces, s.Dialect = o.Sandbox, o.Enforces, o.Dialect
			if s.Dialect == "" {
				s.Dialect = DialectRunc
			}
			if s.Dialect != DialectRunc && s.Dialect != DialectRunsc {
				return nil, fmt.Errorf("backends.%s.dialect: want %s or %s, got %q", name, DialectRunc, DialectRunsc, s.Dialect)
			}
		}
		out[n] = s
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]Spec) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s Spec) clone() Spec {
	s.Flags = slices.Clone(s.Flags)
	s.Unsupported = slices.Clone(s.Unsupported)
	return s
}

// Runtime is a resolved backend: its entry with Binary an absolute path.
type Runtime struct {
	Spec
	// Path is the absolute path of the binary (runtime or shim).
	Path string
}

// Shim reports whether the backend is a containerd shim.
func (r Runtime) Shim() bool { return r.Kind == ContainerdShim }

// MissingError reports a backend binary that is not installed.
type MissingError struct {
	Backend policy.Backend
	Binary  string
	Rule    string
	Err     error
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s chose backend %s, but its binary %q is not installed (%v); refusing to run the container elsewhere",
		RuleName(e.Rule), e.Backend, e.Binary, e.Err)
}

func (e *MissingError) Unwrap() error { return e.Err }

// UnknownError reports a backend name the table does not have.
type UnknownError struct {
	Backend policy.Backend
	Rule    string
	Known   []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("%s chose backend %q, which this node's backends table does not have (known: %s); refusing to run the container elsewhere",
		RuleName(e.Rule), e.Backend, strings.Join(e.Known, ", "))
}

// RuleName names a deciding rule in a message: "policy rule NAME", or the
// default action when no rule decided.
func RuleName(rule string) string {
	if rule == "" {
		return "the default action"
	}
	return "policy rule " + rule
}

// Resolve finds the binary for b ("" is runc). rule names the policy rule
// that chose b, for the error message.
func (t Table) Resolve(b policy.Backend, rule string) (Runtime, error) {
	if b == "" {
		b = policy.Runc
	}
	s, ok := t[b]
	if !ok {
		return Runtime{}, &UnknownError{Backend: b, Rule: rule, Known: t.Names()}
	}
	path, err := exec.LookPath(s.Binary)
	if err != nil {
		return Runtime{}, &MissingError{Backend: b, Binary: s.Binary, Rule: rule, Err: err}
	}
	return Runtime{Spec: s.clone(), Path: path}, nil
}

// CheckPolicy verifies that every backend p's rules can choose is in the
// table, so that a typo fails when the node loads its policy, not when the
// first container meets the rule.
func (t Table) CheckPolicy(p *policy.Policy) error {
	for _, r := range p.Rules {
		if r.Action != policy.Sandbox {
			continue
		}
		s, ok := t[r.Backend]
		if !ok {
			return fmt.Errorf("policy rule %s: backend %q is not in this node's backends table (known: %s)", r.Name, r.Backend, strings.Join(t.Names(), ", "))
		}
		if !s.Sandbox {
			return fmt.Errorf("policy rule %s: backend %q is not a sandbox runtime; action sandbox needs one", r.Name, r.Backend)
		}
	}
	return nil
}

// UsesKind reports whether any of p's rules can choose a backend of kind k.
// Most policies cannot choose a containerd shim, and then `shim start` does
// no evaluation at all.
func (t Table) UsesKind(p *policy.Policy, k Kind) bool {
	for _, r := range p.Rules {
		if r.Action == policy.Sandbox && t[r.Backend].Kind == k {
			return true
		}
	}
	return false
}
