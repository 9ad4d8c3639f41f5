package wardruntime

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/ward-runtime/ward/internal/backend"
)

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
		if !t.runsc() || c.backendKnows(t, id) {
			return err
		}
		// runsc's delete destroys the container's state, then fails when
		// the filestore it kept in the root filesystem is gone with the
		// root filesystem: Podman unmounts a stopped container's before
		// `podman rm` deletes it. The container is gone all the same, and
		// failing would leave it in Podman's list for good.
		c.log.warn(fmt.Sprintf("ward-runtime: %s's delete of %s failed (%v), but it no longer knows the container: deleted", t.backend, id, err))
	}
	if rec == nil {
		return nil
	}
	// Podman deletes a container as soon as it exits, before anyone can
	// commit it: what podman cp wrote while it ran, and no exec or read of
	// the layer by the host adopted since, goes to the container's root now,
	// while ward's overlay is still there to do it through.
	c.adoptHostRootWrites(rec)
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

// backendKnows reports whether the backend still has state for container
// id: anything but its "does not exist" answer to `state` counts as yes.
func (c *ctx) backendKnows(t target, id string) bool {
	argv := c.argv(t, "state", []string{id})
	cmd := exec.Command(t.path, argv[1:]...)
	cmd.Env = c.env.Environ
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if cmd.Run() == nil {
		return true
	}
	return !strings.Contains(stderr.String(), "does not exist")
}
