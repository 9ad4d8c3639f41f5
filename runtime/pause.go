package runtime

// runPause implements `pause ID` on the container's backend.
func runPause(c *ctx, cl cmdline) error { return c.routed(cl, "pause") }
