package landlock

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
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
}

// Encode gives the ruleset's compact form, as EnvVar carries it.
func (r Ruleset) Encode() (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encoding ruleset: %w", err)
	}
	return string(b), nil
}

// Decode reads an encoded ruleset and validates it.
func Decode(s string) (Ruleset, error) {
	var r Ruleset
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Ruleset{}, fmt.Errorf("decoding ruleset: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Ruleset{}, err
	}
	return r, nil
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
