package runtime

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/policy"
)

func deleteFlags() *flagSpec { return newSpec(false, []string{"force,f"}, nil, nil) }

// runDelete implements `delete [--force] ID`: the backend deletes the
// container, then ward forgets it. The record goes only when the backend
// succeeded, so a failed delete can be retried on the same backend.
func runDelete(c *ctx, cl cmdline) error {
	id, err := oneOperand(cl, "delete")
	if err != nil {
		return err
	}
	t, rec, err := c.targetOf(id)
	if err != nil {
		return err
	}
	// runc and runsc both succeed on `delete --force` of a container they
	// no longer know, so a failure here is real: keep the record, so that a
	// retry reaches the same backend.
	if err := c.runBackend(t, "delete", append(cl.tokens(), id)); err != nil {
		return err
	}
	if rec == nil {
		return nil
	}
	if rec.Userns != nil {
		// Before the record goes: a failed release is retried by the
		// next delete.
		if err := c.releaseUserns(rec.Userns); err != nil {
			return err
		}
	}
	if err := c.records().remove(id); err != nil {
		return err
	}
	if t.runsc() {
		c.cleanupRunscRoot(t.root)
	}
	return nil
}

// cleanupRunscRoot unmounts the network namespace runsc --network=none
// leaves mounted under its root once no container there needs it.
func (c *ctx) cleanupRunscRoot(root string) {
	recs, err := c.records().all()
	if err != nil {
		return
	}
	for _, r := range recs {
		if r.Backend == policy.GVisor && r.Root == root {
			return
		}
	}
	netns := filepath.Join(root, "null-netns")
	if err := unix.Unmount(netns, unix.MNT_DETACH); err == nil {
		c.log.debugf("ward-runtime: unmounted %s", netns)
	}
}
