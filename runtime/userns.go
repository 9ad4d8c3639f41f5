package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/harden"
	"github.com/ward-runtime/ward/judge"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/userns"
)

// UsernsConfig is where ward-runtime finds its user-namespace ID pool and
// keeps its allocations. The policy's userns section says whether the step
// runs and which subordinate ID entry is the pool.
type UsernsConfig struct {
	// SubUID and SubGID are the subordinate ID files ("" means
	// /etc/subuid and /etc/subgid).
	SubUID string `yaml:"subuid"`
	SubGID string `yaml:"subgid"`
	// StateDir holds the allocator's state and the idmapped root
	// filesystems. It must be the same for every ward-runtime and shim on
	// the node, whatever --root each is called with, or two containers
	// could get one block ("" means DefaultUsernsStateDir).
	StateDir string `yaml:"stateDir"`
}

// DefaultUsernsStateDir is the node-wide allocator directory. It is on a
// tmpfs: after a reboot no container holds a block.
const DefaultUsernsStateDir = "/run/ward/userns"

func (u UsernsConfig) withDefaults() UsernsConfig {
	if u.SubUID == "" {
		u.SubUID = "/etc/subuid"
	}
	if u.SubGID == "" {
		u.SubGID = "/etc/subgid"
	}
	if u.StateDir == "" {
		u.StateDir = DefaultUsernsStateDir
	}
	return u
}

// RecordUserns is what delete needs to give a container's block back.
type RecordUserns struct {
	Owner  string         `json:"owner"`
	Block  userns.Range   `json:"block"`
	Rootfs *userns.Rootfs `json:"rootfs,omitempty"`
	// Chown counts the files whose owner the chown fallback changed.
	Chown int `json:"chowned,omitempty"`
}

// usernsPool loads the pool when the policy turns the step on.
func (c *ctx) usernsPool(p *policy.Policy) ([]userns.Range, error) {
	if !p.Userns.Enabled {
		return nil, nil
	}
	u := c.cfg.Userns.withDefaults()
	pool, err := userns.LoadPool(u.SubUID, u.SubGID, p.Userns.Pool)
	if err != nil {
		return nil, fmt.Errorf("policy enables user namespaces: %w", err)
	}
	return pool, nil
}

func (c *ctx) allocator(pool []userns.Range) (*userns.Allocator, error) {
	return userns.NewAllocator(c.cfg.Userns.withDefaults().StateDir, pool)
}

// usernsOwner names a container's block in the allocator: containers of
// different --root directories may share an ID.
func (c *ctx) usernsOwner(id string) string { return "ward-runtime:" + c.root() + ":" + id }

// allocUserns gives a stand-alone container its own block.
func (c *ctx) allocUserns(a *userns.Allocator, id string) (*RecordUserns, *policy.UsernsInput, error) {
	owner := c.usernsOwner(id)
	r, err := a.Allocate(owner)
	if err != nil {
		return nil, nil, fmt.Errorf("allocating user-namespace IDs: %w", err)
	}
	return &RecordUserns{Owner: owner, Block: r}, &policy.UsernsInput{HostID: r.Start, Size: r.Size}, nil
}

// usesBlock reports whether the verdict gave the spec ward's user
// namespace: a rejected, sandboxed, audited or exempted container, or one
// whose manager made its own, does not, and its block goes back.
func usesBlock(v *judge.Verdict) bool {
	return slices.ContainsFunc(v.Changes, func(ch harden.Change) bool {
		return ch.Step == policy.StepUserns && ch.Path == "linux.namespaces"
	})
}

// idmapRootfs makes the container's root filesystem reachable through
// idmapped mounts and points root.path at it, or, where the filesystem
// refuses and the policy says chown, changes the owners in place.
func (c *ctx) idmapRootfs(p *policy.Policy, b *bundle.Bundle, u *RecordUserns, v *judge.Verdict) error {
	s := b.Spec
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("spec has no root.path")
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(b.Dir, root)
	}
	ns, err := userns.NewNamespace(u.Block)
	if err != nil {
		return err
	}
	defer ns.Close()
	sum := sha256.Sum256([]byte(u.Owner))
	dir := filepath.Join(c.cfg.Userns.withDefaults().StateDir, "rootfs", hex.EncodeToString(sum[:12]))
	rf, err := userns.IdmapRootfs(root, dir, ns, u.Block)
	switch {
	case err == nil:
		u.Rootfs = rf
		s.Root.Path = rf.Path
		v.Changes = append(v.Changes, harden.Change{Step: policy.StepUserns, Path: "root.path",
			Detail: "root filesystem reached through idmapped mounts at " + rf.Path + " (" + rf.How + ")"})
		return nil
	case errors.Is(err, userns.ErrNotIdmappable) && p.Userns.OnUnidmappable == policy.UnidmappableChown:
		n, cerr := userns.ChownTree(root, u.Block)
		if cerr != nil {
			return cerr
		}
		u.Chown = n
		msg := fmt.Sprintf("root filesystem %s cannot be idmapped (%v); policy userns.onUnidmappable is chown: changed the owner of %d files to the mapped IDs", root, err, n)
		c.log.warn("ward-runtime: " + msg)
		v.Notes = append(v.Notes, msg)
		return nil
	case errors.Is(err, userns.ErrNotIdmappable):
		return fmt.Errorf("%w; policy userns.onUnidmappable is reject (set chown to change owners instead, or exempt the workload from %q)", err, policy.StepUserns)
	}
	return err
}

// releaseUserns undoes the rootfs mounts and frees the block.
func (c *ctx) releaseUserns(u *RecordUserns) error {
	var errs []error
	if u.Rootfs != nil {
		if err := u.Rootfs.Release(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		// The allocator's state is node-wide; its pool only matters for
		// allocation, so a released block needs none.
		a, err := userns.NewAllocator(c.cfg.Userns.withDefaults().StateDir, []userns.Range{u.Block})
		if err == nil {
			err = a.Release(u.Owner)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("releasing user namespace of %s: %w", u.Owner, err)
	}
	return nil
}
