package landlock

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Where the launcher lives in every container ward rewrites, and how the
// rewrite hands it the ruleset.
const (
	// Dir is a small tmpfs ward mounts into the container. It holds the
	// launcher and the ruleset the container's first process was started
	// with, which exec sessions reuse. Every profile makes it read-only
	// to the workload.
	Dir = "/.ward"
	// LauncherPath is where ward-init is bind-mounted, read-only.
	LauncherPath = Dir + "/ward-init"
	// HandoffPath is where the first launcher of a container leaves the
	// ruleset for exec sessions, before restricting itself.
	HandoffPath = Dir + "/ruleset.json"
	// SeccompPath is where ward's compiled seccomp filter is bind-mounted,
	// read-only, when ward-init rather than runc installs it
	// (harden.Options.Filters); ward-init installs it when it is there.
	SeccompPath = Dir + "/seccomp.bpf"
	// ProfileSeccompPath is where the workload's own seccomp profile,
	// compiled by ward and composed with the baseline, is bind-mounted,
	// read-only, when ward rather than runc compiles it: ward-init
	// installs it before SeccompPath's filter, and only with it.
	ProfileSeccompPath = Dir + "/profile.bpf"
	// SupervisorPath is where ward's supervisor socket is bind-mounted
	// when the filter sends calls to a listener (docs/detection.md):
	// ward-init connects to it before it restricts itself and hands it
	// the filter's listener.
	SupervisorPath = Dir + "/supervisor.sock"
	// EnvVar carries the encoded ruleset to the first launcher. The
	// launcher removes it before starting the workload.
	EnvVar = "WARD_LANDLOCK"
)

// MaxABI is the newest Landlock ABI whose features a ruleset can use.
const MaxABI = 6

// PathRule grants access to a path and everything below it.
type PathRule struct {
	Path   string `json:"path" yaml:"path"`
	Access Access `json:"access" yaml:"access"`
}

// Ruleset is a profile resolved for one container: what the launcher
// enforces. It is a value; the launcher receives it encoded (Encode).
type Ruleset struct {
	// Profile names the profile the ruleset came from, for logs.
	Profile string `json:"profile"`
	// Root is the access to the image: every path no rule in Paths
	// covers.
	Root Access `json:"root"`
	// Paths are the places that differ from the image: writable places,
	// volumes, /proc, /sys. A rule's access is exactly what its hierarchy
	// gets, even below a broader rule.
	Paths []PathRule `json:"paths,omitempty"`
	// TCPConnect and TCPBind are port allow-lists. nil leaves the
	// operation unrestricted; an empty list refuses it on every port.
	TCPConnect []uint16 `json:"tcpConnect"`
	TCPBind    []uint16 `json:"tcpBind"`
	// Scope lists the IPC scopes (ScopeAbstractUnixSocket, ScopeSignal).
	Scope []string `json:"scope,omitempty"`
	// RequireABI is the lowest Landlock ABI the workload may start on; 0
	// enforces what the kernel supports and reports the rest.
	RequireABI int `json:"requireABI,omitempty"`
	// HostNetwork scopes abstract UNIX sockets whatever the profile says:
	// the container shares the host's, among them a containerd-shim's
	// (CVE-2020-15257). It is not a profile's choice.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Audit: the rules above are reported (WouldRefuse), not enforced;
	// only what HostNetwork asks for is (see Enforced).
	Audit bool `json:"audit,omitempty"`
}

// all is every access group.
const all = Read | Write | Exec

// Enforced is the part of r the launcher enforces: r itself, or for an
// audit ruleset only what is never optional (HostNetwork's scope).
func (r Ruleset) Enforced() Ruleset {
	if !r.Audit {
		return r
	}
	// ward's own directory stays read-only: exec sessions must not read
	// a forged ruleset without HostNetwork's scope.
	return Ruleset{Profile: r.Profile, Root: all, Paths: []PathRule{{Path: Dir, Access: Read}},
		HostNetwork: r.HostNetwork, RequireABI: r.RequireABI}
}

// Unrestricted reports whether r restricts nothing: every path is fully
// accessible (ward's own directory aside), no port list and no scope.
// The launcher then creates no Landlock domain at all, so exec sessions
// and the container's first process are not set apart (a domain limits
// ptrace and /proc/<pid> access across domains). /.ward needs no
// protection then: a forged handoff could only restrict an exec session.
func (r Ruleset) Unrestricted() bool {
	if r.Root != all || r.TCPConnect != nil || r.TCPBind != nil || len(r.scopes()) > 0 {
		return false
	}
	for _, p := range r.Paths {
		if p.Access != all && p.Path != Dir {
			return false
		}
	}
	return true
}

// scopes is Scope plus what HostNetwork adds.
func (r Ruleset) scopes() []string {
	if !r.HostNetwork || slices.Contains(r.Scope, ScopeAbstractUnixSocket) {
		return r.Scope
	}
	return append(slices.Clip(r.Scope), ScopeAbstractUnixSocket)
}

// AccessAt is the access r's rules give path (absolute, clean): the
// deepest rule at or above it, else Root. It leaves out what Plan adds
// from the filesystem at start (image executables in split directories,
// the entrypoint), so it answers "may a file written here be executed?"
// as W^X means it. It is the seam for runtime drift detection: a
// detector judges an observed exec or write against the ruleset a
// container carries (or would carry under wx).
func (r Ruleset) AccessAt(p string) Access {
	best, a := "", r.Root
	for _, q := range r.Paths {
		if (p == q.Path || strings.HasPrefix(p, q.Path+"/")) && len(q.Path) > len(best) {
			best, a = q.Path, q.Access
		}
	}
	return a
}

// WouldRefuse names, one line each, what r refuses that a container
// without Landlock could do: what an audit ruleset reports.
func (r Ruleset) WouldRefuse() []string {
	var out []string
	say := func(where string, a Access) {
		if a&Write == 0 {
			out = append(out, "write "+where)
		}
		if a&Exec == 0 {
			out = append(out, "execute "+where)
		}
	}
	say("elsewhere on the rootfs", r.Root)
	for _, p := range r.Paths {
		if p.Path != Dir {
			say("below "+p.Path, p.Access)
		}
	}
	if r.TCPConnect != nil {
		out = append(out, "tcp connect except to ports "+fmt.Sprint(r.TCPConnect))
	}
	if r.TCPBind != nil {
		out = append(out, "tcp bind except to ports "+fmt.Sprint(r.TCPBind))
	}
	for _, s := range r.scopes() {
		out = append(out, "scope "+s+": outside the container's first process and its children (exec sessions too)")
	}
	return out
}

// Encode gives the ruleset's compact form, as EnvVar carries it.
func (r Ruleset) Encode() (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	return string(r.appendJSON(make([]byte, 0, 512))), nil
}

// appendJSON writes r as JSON into one buffer. The ruleset is encoded on
// every create, and encoding/json costs an allocation per access value.
// A test checks that encoding/json reads the output as Decode does.
func (r Ruleset) appendJSON(b []byte) []byte {
	b = append(b, `{"profile":`...)
	b = appendJSONString(b, r.Profile)
	b = append(b, `,"root":`...)
	b = appendJSONString(b, r.Root.String())
	if len(r.Paths) > 0 {
		b = append(b, `,"paths":[`...)
		for i, p := range r.Paths {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"path":`...)
			b = appendJSONString(b, p.Path)
			b = append(b, `,"access":`...)
			b = appendJSONString(b, p.Access.String())
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendPorts(append(b, `,"tcpConnect":`...), r.TCPConnect)
	b = appendPorts(append(b, `,"tcpBind":`...), r.TCPBind)
	if len(r.Scope) > 0 {
		b = appendStrings(append(b, `,"scope":`...), r.Scope)
	}
	if r.RequireABI != 0 {
		b = append(b, `,"requireABI":`...)
		b = strconv.AppendInt(b, int64(r.RequireABI), 10)
	}
	if r.HostNetwork {
		b = append(b, `,"hostNetwork":true`...)
	}
	if r.Audit {
		b = append(b, `,"audit":true`...)
	}
	return append(b, '}')
}

// appendStrings writes a list of strings, nil as null.
func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendPorts writes nil as null and an empty list as [], which mean
// different things (unrestricted, refuse all).
func appendPorts(b []byte, ports []uint16) []byte {
	if ports == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, p := range ports {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(p), 10)
	}
	return append(b, ']')
}

// appendJSONString quotes s for JSON. s is valid UTF-8 (specs are decoded
// strictly), so only quotes, backslashes and control characters need
// escapes.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Validate checks what the launcher relies on.
func (r Ruleset) Validate() error {
	if r.Root&Read == 0 {
		return fmt.Errorf("ruleset %q: root access %q lacks r: nothing could run", r.Profile, r.Root)
	}
	for i, p := range r.Paths {
		if err := checkPath(p.Path); err != nil {
			return fmt.Errorf("ruleset %q: paths[%d]: %w", r.Profile, i, err)
		}
		if p.Access == 0 || p.Access > Read|Write|Exec {
			return fmt.Errorf("ruleset %q: paths[%d]: invalid access", r.Profile, i)
		}
	}
	if err := checkPorts(r.TCPConnect); err != nil {
		return fmt.Errorf("ruleset %q: tcpConnect: %w", r.Profile, err)
	}
	if err := checkPorts(r.TCPBind); err != nil {
		return fmt.Errorf("ruleset %q: tcpBind: %w", r.Profile, err)
	}
	if err := checkScope(r.Scope); err != nil {
		return fmt.Errorf("ruleset %q: scope: %w", r.Profile, err)
	}
	if r.RequireABI < 0 || r.RequireABI > MaxABI {
		return fmt.Errorf("ruleset %q: requireABI %d: want 0 to %d", r.Profile, r.RequireABI, MaxABI)
	}
	return nil
}

// checkPath refuses what cannot be a rule: relative or unclean paths, the
// root (its access is Root) and paths naming a parent directory.
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is not absolute", p)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %q contains a NUL byte", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	case p == "/":
		return fmt.Errorf("path \"/\" is the rootfs: set its access with rootfs and writableRootfs")
	}
	return nil
}

func checkPorts(ports []uint16) error {
	for i, p := range ports {
		if p == 0 {
			return fmt.Errorf("port 0 at [%d]: want 1 to 65535", i)
		}
		if slices.Contains(ports[:i], p) {
			return fmt.Errorf("port %d given twice", p)
		}
	}
	return nil
}

func checkScope(scope []string) error {
	for i, s := range scope {
		if _, ok := scopeBit(s); !ok {
			return fmt.Errorf("unknown scope %q at [%d] (want %s or %s)", s, i, ScopeAbstractUnixSocket, ScopeSignal)
		}
		if slices.Contains(scope[:i], s) {
			return fmt.Errorf("scope %q given twice", s)
		}
	}
	return nil
}
