package admission

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Lease is a container's hold on a block of host IDs: its own (a sandbox,
// or a container outside any pod) or its pod's (an app container, which
// joins the sandbox's namespace and owns nothing). Front doors keep it with
// the container (the shim in memory, ward-runtime in its state record) and
// give it back with Admitter.Release when the container is deleted.
type Lease struct {
	Owner string `json:"owner"`
	// Layer is true when Owner is the container's writable layer
	// (userns.LayerOwner): release undoes the mounts and gives the layer's
	// files back to the IDs the container sees, but keeps the block, which
	// the next container on the layer (docker start) gets again.
	Layer bool         `json:"layer,omitempty"`
	Block userns.Range `json:"block"`
	// Join is the user namespace the container joins ("" for its own).
	Join string `json:"join,omitempty"`
	// Rootfs is the idmapped root filesystem a RootfsMapper mounted, to be
	// unmounted with the lease.
	Rootfs *userns.Rootfs `json:"rootfs,omitempty"`
	// Chown counts the files whose owner the chown fallback changed.
	Chown int `json:"chowned,omitempty"`
}

// Owns reports whether the lease holds a block of its own.
func (l *Lease) Owns() bool { return l != nil && l.Join == "" }

// input is the lease as the judge sees it.
func (l *Lease) input() *policy.UsernsInput {
	return &policy.UsernsInput{HostID: l.Block.Start, Size: l.Block.Size, Join: l.Join}
}

// RootfsMapper makes a container's root filesystem reachable by its mapped
// IDs, the one step of a user namespace that depends on the front door: the
// shim asks containerd's mount code for idmapped layers, ward-runtime
// mounts them itself. It records its change in v, and in l what must be
// undone at release.
type RootfsMapper interface {
	MapRootfs(b *bundle.Bundle, l *Lease, v *judge.Verdict) error
}

// lease gives the container its user namespace when the policy turns the
// step on: a new block for a sandbox or a container outside any pod, the
// sandbox's namespace for an app container (nil when the sandbox has none
// of ward's: exempted, its manager made one, or sent to a sandbox
// runtime; the step then decides what that means for the container).
func (a *Admitter) lease(r *Request, b *bundle.Bundle, pod *PodRecord) (*Lease, error) {
	if a.pool == nil {
		return nil, nil
	}
	if b.Workload.Kind == bundle.PodContainer {
		if pod == nil || pod.Userns == nil {
			return nil, nil
		}
		pid, err := pod.sandboxPID(r.SandboxPID)
		if err != nil {
			return nil, err
		}
		if pid <= 0 {
			return nil, nil
		}
		return &Lease{Owner: pod.Userns.Owner, Block: pod.Userns.Block, Join: "/proc/" + strconv.Itoa(pid) + "/ns/user"}, nil
	}
	if r.infra != nil {
		return r.infra, nil
	}
	owner, layer := r.Owner, false
	if r.BlockPerLayer && b.Spec.Root != nil && b.Spec.Root.Path != "" {
		root := b.Spec.Root.Path
		if !filepath.IsAbs(root) {
			root = filepath.Join(b.Dir, root)
		}
		upper, err := userns.WritableLayer(root)
		if err != nil {
			return nil, fmt.Errorf("allocating user-namespace IDs: %w", err)
		}
		if upper != "" {
			owner, layer = userns.LayerOwner(upper), true
		}
	}
	al, err := a.cfg.Userns.Allocator(a.pool)
	if err != nil {
		return nil, err
	}
	block, err := al.Allocate(owner)
	if err != nil {
		return nil, fmt.Errorf("allocating user-namespace IDs: %w", err)
	}
	return &Lease{Owner: owner, Layer: layer, Block: block}, nil
}

// infraOf is the lease of a container that joins, as a Podman pod's
// member, the user namespace of its infra container (lease l, running as
// pid); nil when that one has none of ward's or is not running.
func infraOf(l *Lease, pid int) *Lease {
	if l == nil || pid <= 0 {
		return nil
	}
	return &Lease{Owner: l.Owner, Block: l.Block, Join: "/proc/" + strconv.Itoa(pid) + "/ns/user"}
}

// Release gives back what a lease holds: the idmapped root filesystem
// (where its writable layer could not be idmapped, with the layer's files
// given back to the IDs the container sees, so that a commit of the
// stopped container equals runc's), then the
// block, if the lease owns one and no writable layer does. The block stays
// allocated when the unmount fails, so that no other container gets IDs
// that still own files here.
func (a *Admitter) Release(l *Lease) error {
	return ReleaseLease(a.cfg.Userns, l)
}

// ReleaseLease is Release for callers with no Admitter: a shim's `delete`
// after its task service died, or a reaper whose policy no longer loads.
func ReleaseLease(cfg userns.Config, l *Lease) error {
	if l == nil {
		return nil
	}
	var errs []error
	if l.Rootfs != nil {
		if err := l.Rootfs.Release(); err != nil {
			errs = append(errs, err)
		}
		if len(errs) == 0 && l.Rootfs.Upper != "" {
			if _, err := userns.UnchownTree(l.Rootfs.Upper, l.Block); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 && l.Owns() && !l.Layer {
		if err := cfg.Release(l.Owner, l.Block); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("releasing user namespace of %s: %w", l.Owner, err)
	}
	return nil
}

// usesUserns reports whether the verdict gave the spec ward's user
// namespace.
func usesUserns(v *judge.Verdict) bool {
	return slices.ContainsFunc(v.Changes, func(ch harden.Change) bool {
		return ch.Step == policy.StepUserns && ch.Path == "linux.namespaces"
	})
}
