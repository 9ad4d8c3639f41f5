package landlock

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Profile is a Landlock profile as ward ships it (profiles/landlock) or an
// operator writes it in the policy file. It is a value.
type Profile struct {
	// Name identifies the profile: lowercase letters, digits and '-'.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Extends names a profile this one starts from: its fields are kept
	// unless set here, and Paths are added to.
	Extends string `yaml:"extends"`
	// Rootfs is the access to the image when the rootfs is read-only;
	// WritableRootfs when it is writable.
	Rootfs         Access `yaml:"rootfs"`
	WritableRootfs Access `yaml:"writableRootfs"`
	// Volumes is the access to writable bind mounts and tmpfs mounts;
	// ReadOnlyVolumes to read-only ones. Zero leaves them to the rootfs
	// and Paths.
	Volumes         Access `yaml:"volumes"`
	ReadOnlyVolumes Access `yaml:"readOnlyVolumes"`
	// Paths grant access to named places (missing ones are skipped).
	Paths   []PathRule `yaml:"paths"`
	Network *Network   `yaml:"network"`
	Scope   []string   `yaml:"scope"`
	// RequireABI refuses to start the workload on a kernel whose Landlock
	// ABI is older.
	RequireABI int `yaml:"requireABI"`
	// Audit reports what the profile would refuse instead of enforcing
	// it: the container runs as with no profile (see Ruleset.Enforced),
	// and the launcher names the refusals on its stderr. A profile that
	// extends an audit profile is one too.
	Audit bool `yaml:"audit"`
}

// Network holds TCP port allow-lists (Landlock ABI 4). A list left out
// leaves that operation unrestricted; an empty list refuses it.
type Network struct {
	TCPConnect []uint16 `yaml:"tcpConnect"`
	TCPBind    []uint16 `yaml:"tcpBind"`
}

// validName reports whether s is a profile name: 1 to 64 lowercase
// letters, digits and '-', neither first nor last a '-'. Written out
// rather than a regular expression: this package runs in every container
// start (ward-init), and a package-level regexp is compiled at each.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks a resolved profile (after Extend). Errors name the
// field.
func (p Profile) Validate() error {
	if !validName(p.Name) {
		return fmt.Errorf("name %q: want lowercase letters, digits and '-'", p.Name)
	}
	if p.Rootfs&Read == 0 {
		return fmt.Errorf("rootfs %q: must include r, or nothing in the image can run", p.Rootfs)
	}
	if p.WritableRootfs&Read == 0 {
		return fmt.Errorf("writableRootfs %q: must include r, or nothing in the image can run", p.WritableRootfs)
	}
	for i, r := range p.Paths {
		if err := checkPath(r.Path); err != nil {
			return fmt.Errorf("paths[%d].path: %w", i, err)
		}
		if r.Path == Dir || strings.HasPrefix(r.Path, Dir+"/") {
			return fmt.Errorf("paths[%d].path: %s is ward's own directory", i, Dir)
		}
		if r.Access == 0 {
			return fmt.Errorf("paths[%d].access: missing", i)
		}
		if slices.ContainsFunc(p.Paths[:i], func(q PathRule) bool { return q.Path == r.Path }) {
			return fmt.Errorf("paths[%d].path: %q given twice", i, r.Path)
		}
	}
	if p.Network != nil {
		if err := checkPorts(p.Network.TCPConnect); err != nil {
			return fmt.Errorf("network.tcpConnect: %w", err)
		}
		if err := checkPorts(p.Network.TCPBind); err != nil {
			return fmt.Errorf("network.tcpBind: %w", err)
		}
		if p.Network.TCPConnect == nil && p.Network.TCPBind == nil {
			return errors.New("network: give tcpConnect or tcpBind (an empty list refuses every port)")
		}
	}
	if err := checkScope(p.Scope); err != nil {
		return fmt.Errorf("scope: %w", err)
	}
	if p.RequireABI < 0 || p.RequireABI > MaxABI {
		return fmt.Errorf("requireABI %d: want 0 to %d", p.RequireABI, MaxABI)
	}
	return nil
}

// Extend returns p on top of base: p's set fields win, Paths are base's
// followed by p's (a path p names replaces base's rule for it).
func (p Profile) Extend(base Profile) Profile {
	out := base
	out.Name, out.Description, out.Extends = p.Name, p.Description, ""
	if p.Rootfs != 0 {
		out.Rootfs = p.Rootfs
	}
	if p.WritableRootfs != 0 {
		out.WritableRootfs = p.WritableRootfs
	}
	if p.Volumes != 0 {
		out.Volumes = p.Volumes
	}
	if p.ReadOnlyVolumes != 0 {
		out.ReadOnlyVolumes = p.ReadOnlyVolumes
	}
	out.Paths = slices.DeleteFunc(slices.Clone(base.Paths), func(b PathRule) bool {
		return slices.ContainsFunc(p.Paths, func(q PathRule) bool { return q.Path == b.Path })
	})
	out.Paths = append(out.Paths, p.Paths...)
	if p.Network != nil {
		n := Network{}
		if base.Network != nil {
			n = *base.Network
		}
		if p.Network.TCPConnect != nil {
			n.TCPConnect = p.Network.TCPConnect
		}
		if p.Network.TCPBind != nil {
			n.TCPBind = p.Network.TCPBind
		}
		out.Network = &n
	}
	if p.Scope != nil {
		out.Scope = p.Scope
	}
	if p.RequireABI != 0 {
		out.RequireABI = p.RequireABI
	}
	out.Audit = base.Audit || p.Audit
	return out
}

// Container is what a ruleset depends on in a container's spec.
type Container struct {
	ReadonlyRoot bool
	Mounts       []Mount
	// HostNetwork is true when the container may share the host's network
	// namespace, and with it the host's abstract UNIX sockets.
	HostNetwork bool
}

// Mount is one entry of the spec's mounts.
type Mount struct {
	Destination string
	// Volume is true for bind and tmpfs mounts: places whose contents do
	// not come from the image. Kernel filesystems (proc, sysfs, devpts,
	// mqueue, cgroup) are left to the profile's paths.
	Volume   bool
	ReadOnly bool
}

// Ruleset resolves p for container c.
func (p Profile) Ruleset(c Container) Ruleset {
	r := Ruleset{Profile: p.Name, Root: p.Rootfs, Scope: slices.Clone(p.Scope), RequireABI: p.RequireABI,
		HostNetwork: c.HostNetwork, Audit: p.Audit}
	if !c.ReadonlyRoot {
		r.Root = p.WritableRootfs
	}
	r.Paths = append(r.Paths, p.Paths...)
	for _, m := range c.Mounts {
		dst := path.Clean(m.Destination)
		if !m.Volume || !strings.HasPrefix(dst, "/") || dst == "/" || dst == Dir || strings.HasPrefix(dst, Dir+"/") {
			continue
		}
		a := p.Volumes
		if m.ReadOnly {
			a = p.ReadOnlyVolumes
		}
		if a == 0 {
			continue
		}
		// The last mount at a destination is the one the workload sees.
		r.Paths = slices.DeleteFunc(r.Paths, func(q PathRule) bool { return q.Path == dst })
		r.Paths = append(r.Paths, PathRule{Path: dst, Access: a})
	}
	// ward's own directory: the workload may read it, never change the
	// ruleset exec sessions will use.
	r.Paths = append(r.Paths, PathRule{Path: Dir, Access: Read})
	if p.Network != nil {
		r.TCPConnect = slices.Clone(p.Network.TCPConnect)
		r.TCPBind = slices.Clone(p.Network.TCPBind)
		// Keep "empty" distinct from "unrestricted" through the copy.
		if p.Network.TCPConnect != nil && r.TCPConnect == nil {
			r.TCPConnect = []uint16{}
		}
		if p.Network.TCPBind != nil && r.TCPBind == nil {
			r.TCPBind = []uint16{}
		}
	}
	return r
}
