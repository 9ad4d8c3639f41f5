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
	pool, err := c.cfg.Userns.Pool(p.Userns.Pool)
	if err != nil {
		return nil, fmt.Errorf("policy enables user namespaces: %w", err)
	}
	return pool, nil
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
	dir := filepath.Join(c.cfg.Userns.WithDefaults().StateDir, "rootfs", hex.EncodeToString(sum[:12]))
	rf, err := userns.IdmapRootfs(root, dir, ns, u.Block)
	switch {
	case err == nil:
		u.Rootfs = rf
		s.Root.Path = rf.Path
		v.Changes = append(v.Changes, harden.Change{Step: policy.StepUserns, Path: "root.path",
			Detail: "root filesystem reached through idmapped mounts at " + rf.Path + " (" + rf.How + ")"})
		return nil
	case errors.Is(err, userns.ErrNotIdmappable) && p.Userns.OnUnidmappable == policy.UnidmappableChown &&
		slices.ContainsFunc(v.Findings, func(f policy.Finding) bool { return f.Check.ID == policy.IDRootfsUnproven }):
		// chown changes files for good: only in a root ward has proved a
		// container's (docs/threat-model.md).
		return fmt.Errorf("%w; policy userns.onUnidmappable is chown, but root.path %s is not proved a container root filesystem (rootfs-unproven): refusing to chown it", err, root)
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
		if err := c.cfg.Userns.Release(u.Owner, u.Block); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("releasing user namespace of %s: %w", u.Owner, err)
	}
	return nil
}
