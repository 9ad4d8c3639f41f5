package runtime

// runResume implements `resume ID` on the container's backend.
func runResume(c *ctx, cl cmdline) error { return c.routed(cl, "resume") }
