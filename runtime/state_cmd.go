package runtime

// runState implements `state ID`: the OCI state, from the backend that
// runs the container (runc and runsc print the same document).
func runState(c *ctx, cl cmdline) error {
	if _, err := oneOperand(cl, "state"); err != nil {
		return err
	}
	return c.routed(cl, "state")
}
