package runtime

// ps takes its flags before the ID only: what follows the ID are ps(1)
// arguments.
func psFlags() *flagSpec { return newSpec(true, nil, []string{"format,f"}, nil) }

// runPs implements `ps [--format F] ID [ps args]` on the container's backend.
func runPs(c *ctx, cl cmdline) error { return c.routed(cl, "ps") }
