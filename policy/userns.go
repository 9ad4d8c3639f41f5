package policy

import (
	"fmt"
	"strings"
)

// Unidmappable choices: what a front door does with a root filesystem
// that cannot be reached through an idmapped mount.
const (
	// UnidmappableReject refuses the container (the default).
	UnidmappableReject = "reject"
	// UnidmappableChown changes the owner of the container's writable
	// layer to the mapped IDs instead, and logs that it did.
	UnidmappableChown = "chown"
)

// DefaultSubIDUser is the /etc/subuid and /etc/subgid entry whose ranges
// ward hands out.
const DefaultSubIDUser = "ward"

// Userns is the policy file's userns section: whether hardened containers
// get a user namespace of their own, and from which pool. Single workloads
// are exempted with an exemption that skips the userns step, which says
// why.
type Userns struct {
	// Enabled turns the step on for every hardened container.
	Enabled Bool `yaml:"enabled"`
	// Pool names the subordinate ID entry (/etc/subuid, /etc/subgid) the
	// front doors allocate from; "" means "ward".
	Pool string `yaml:"pool"`
	// OnUnidmappable is reject (default) or chown.
	OnUnidmappable string `yaml:"onUnidmappable"`
}

// subIDUser reports whether name is a user name as /etc/subuid lists them:
// ^[a-z_][a-z0-9_.-]{0,31}$. A loop, not a regexp compiled at every start
// of every ward process.
func subIDUser(name string) bool {
	if name == "" || len(name) > 32 || '0' <= name[0] && name[0] <= '9' || name[0] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("_.-", c) >= 0) {
			return false
		}
	}
	return true
}

func (u *Userns) validate() error {
	if u.Pool == "" {
		u.Pool = DefaultSubIDUser
	}
	if !subIDUser(u.Pool) {
		return errAt(fmt.Errorf("%q is not a user name as /etc/subuid lists them", u.Pool), "userns", "pool")
	}
	switch u.OnUnidmappable {
	case "":
		u.OnUnidmappable = UnidmappableReject
	case UnidmappableReject, UnidmappableChown:
	default:
		return errAt(fmt.Errorf("want %s or %s, got %q", UnidmappableReject, UnidmappableChown, u.OnUnidmappable), "userns", "onUnidmappable")
	}
	return nil
}
