package runtime

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"
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
	if err := c.runBackend(t, "delete", append(cl.tokens(), id)); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || rec == nil || !cl.bool("force") {
			return err
		}
		// --force on a container its backend no longer knows (it exited and
		// was removed by `run`, or the machine rebooted): ward's record is
		// all that is left, and forgetting it is what the caller asked.
		c.log.debugf("ward-runtime: %s delete failed (%v); removing ward's record anyway", t.path, err)
	}
	if rec == nil {
		return nil
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
		if r.Backend == "gvisor" && r.Root == root {
			return
		}
	}
	netns := filepath.Join(root, "null-netns")
	if err := unix.Unmount(netns, unix.MNT_DETACH); err == nil {
		c.log.debugf("ward-runtime: unmounted %s", netns)
	}
}
