package shim

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// usernsOwner names a pod's block in the node-wide allocator.
func usernsOwner(sandboxID string) string { return "pod:" + sandboxID }

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

// shimRootfs maps a container's root filesystem through containerd's
// mount code: idmapped root filesystem layers and a bundle directory the
// mapped root can search.
type shimRootfs struct{ r *taskAPI.CreateTaskRequest }

func (m shimRootfs) MapRootfs(_ *bundle.Bundle, l *admission.Lease, v *judge.Verdict) error {
	if err := idmapRootfs(m.r.Rootfs, l.Block); err != nil {
		return err
	}
	if err := openBundle(m.r.Bundle, l.Block); err != nil {
		return err
	}
	v.Changes = append(v.Changes, harden.Change{Step: policy.StepUserns, Path: "rootfs",
		Detail: "root filesystem mounts get uidmap/gidmap: containerd mounts their lower layers idmapped"})
	return nil
}

// releaseStale gives back the block and the record of the pod whose
// sandbox is id, if there are any, for `shim delete`, which runs without
// the task service's memory (a shim that died never saw its sandbox's
// Delete). It reads the node configuration from $WARD_CONFIG or the
// default path: a handler's own WardConfig option is not known there.
func releaseStale(id string) error {
	cfg, err := loadConfig("")
	if err != nil {
		return err
	}
	var errs []error
	if cfg.Userns.InUse() {
		errs = append(errs, cfg.Userns.Release(usernsOwner(id), userns.Placeholder()))
	}
	errs = append(errs, (admission.PodStore{Dir: cfg.PodDir()}).Remove(id))
	return errors.Join(errs...)
}
