package shim

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/log"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/harden"
	"github.com/ward-runtime/ward/judge"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/userns"
)

// podUserns is a pod's user namespace: the block allocated at its sandbox
// and, once the sandbox runs, its process, whose namespace the pod's app
// containers join.
type podUserns struct {
	owner string
	block userns.Range
	pid   uint32
	cfg   userns.Config
}

// usernsOwner names a pod's block in the node-wide allocator.
func usernsOwner(sandboxID string) string { return "pod:" + sandboxID }

// usernsInput says what the container's user namespace is to be: a new
// block for a sandbox (allocated here; the caller gives it back with
// releaseUserns if the sandbox does not use it), the sandbox's namespace
// for an app container. nil when the policy has the step off.
func (s *Service) usernsInput(e *env, b *bundle.Bundle, id string) (*policy.UsernsInput, error) {
	if e.pool == nil {
		return nil, nil
	}
	if b.Workload.Kind == bundle.PodContainer {
		s.mu.Lock()
		pu := s.userns[b.Workload.SandboxID]
		s.mu.Unlock()
		if pu == nil || pu.pid == 0 {
			// The sandbox has no namespace of ward's (exempted, its
			// manager made one, or routed to a sandbox runtime): the
			// step decides what that means for this container.
			return nil, nil
		}
		return &policy.UsernsInput{HostID: pu.block.Start, Size: pu.block.Size, Join: "/proc/" + strconv.FormatUint(uint64(pu.pid), 10) + "/ns/user"}, nil
	}
	// A sandbox, or a container outside any pod (ctr run through the
	// shim), which is its own pod.
	a, err := e.cfg.Userns.Allocator(e.pool)
	if err != nil {
		return nil, err
	}
	r, err := a.Allocate(usernsOwner(id))
	if err != nil {
		return nil, fmt.Errorf("allocating the pod's user-namespace IDs: %w", err)
	}
	s.mu.Lock()
	s.userns[id] = &podUserns{owner: usernsOwner(id), block: r, cfg: e.cfg.Userns}
	s.mu.Unlock()
	return &policy.UsernsInput{HostID: r.Start, Size: r.Size}, nil
}

// usesUserns reports whether the verdict gave the spec ward's user
// namespace.
func usesUserns(v *judge.Verdict) bool {
	return slices.ContainsFunc(v.Changes, func(ch harden.Change) bool {
		return ch.Step == policy.StepUserns && ch.Path == "linux.namespaces"
	})
}

// idmapRootfs asks containerd's mount code, which the runc shim uses to
// mount the create request's root filesystem, for idmapped layers: the
// uidmap= and gidmap= options make it mount each overlay lower layer (or a
// bind) through an idmapped mount. The upper layer cannot be idmapped by
// a mounter outside the mapping; its top directory goes to the mapped root.
func idmapRootfs(mounts []*types.Mount, r userns.Range) error {
	if len(mounts) == 0 {
		return fmt.Errorf("the create request has no root filesystem mounts to idmap; refusing a root filesystem container root could not own")
	}
	m := fmt.Sprintf("0:%d:%d", r.Start, r.Size)
	for _, mnt := range mounts {
		if mnt.Type != "overlay" && mnt.Type != "bind" && !slices.Contains(mnt.Options, "bind") && !slices.Contains(mnt.Options, "rbind") {
			return fmt.Errorf("root filesystem mount of type %q cannot be idmapped by containerd's mount code: %w", mnt.Type, userns.ErrNotIdmappable)
		}
		if slices.ContainsFunc(mnt.Options, func(o string) bool { return strings.HasPrefix(o, "uidmap=") || strings.HasPrefix(o, "gidmap=") }) {
			continue
		}
		for _, o := range mnt.Options {
			if upper, ok := strings.CutPrefix(o, "upperdir="); ok {
				if err := userns.GiveUpperTop(upper, r); err != nil {
					return err
				}
			}
		}
		mnt.Options = append(mnt.Options, "uidmap="+m, "gidmap="+m)
	}
	return nil
}

// openBundle lets the mapped root reach the root filesystem below the
// bundle directory, as containerd does for the pods it maps itself: the
// directory's group becomes the mapped root's and may search it (0710).
// runc sets up the root filesystem as the container's root.
func openBundle(dir string, r userns.Range) error {
	if err := os.Chown(dir, -1, int(r.Start)); err != nil {
		return fmt.Errorf("opening the bundle to the mapped root: %w", err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return fmt.Errorf("opening the bundle to the mapped root: %w", err)
	}
	return nil
}

// idmapContainer prepares the create request of a container that got
// ward's user namespace: idmapped root filesystem layers and a bundle
// directory the mapped root can search.
func (s *Service) idmapContainer(r *taskAPI.CreateTaskRequest, in *policy.UsernsInput, v *judge.Verdict) error {
	block := userns.Range{Start: in.HostID, Size: in.Size}
	if err := idmapRootfs(r.Rootfs, block); err != nil {
		return err
	}
	if err := openBundle(r.Bundle, block); err != nil {
		return err
	}
	v.Changes = append(v.Changes, harden.Change{Step: policy.StepUserns, Path: "rootfs",
		Detail: "root filesystem mounts get uidmap/gidmap: containerd mounts their lower layers idmapped"})
	return nil
}

// releaseStale gives back the block of the pod whose sandbox is id, if
// there is one, for `shim delete`, which runs without the task service's
// memory. It reads the configuration from $WARD_SHIM_CONFIG or the
// default path: a handler's own WardConfig option is not known there.
func releaseStale(id string) error {
	path, required := ConfigPath("")
	cfg, err := LoadConfig(path, required)
	if err != nil {
		return err
	}
	if !cfg.Userns.InUse() {
		return nil
	}
	return cfg.Userns.Release(usernsOwner(id), userns.Placeholder())
}

// releaseUserns gives a pod's block back.
func (s *Service) releaseUserns(ctx context.Context, sandboxID string) {
	s.mu.Lock()
	pu := s.userns[sandboxID]
	delete(s.userns, sandboxID)
	s.mu.Unlock()
	if pu == nil {
		return
	}
	if err := pu.cfg.Release(pu.owner, pu.block); err != nil {
		log.G(ctx).WithError(err).Error("ward: releasing the pod's user-namespace IDs")
	}
}
