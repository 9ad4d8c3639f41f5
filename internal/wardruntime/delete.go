package wardruntime

import "github.com/ward-runtime/ward/internal/backend"

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
	return c.forget(rec)
}

// cleanupRunscRoot unmounts the network namespace runsc pins under its
// root once no container there needs it.
func (c *ctx) cleanupRunscRoot(root string) {
	released, err := backend.ReleaseRunscRoot(root)
	if err != nil {
		c.log.debugf("ward-runtime: %v", err)
	}
	if released {
		c.log.debugf("ward-runtime: released runsc's null network namespace in %s", root)
	}
}
