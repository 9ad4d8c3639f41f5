package runtime

func killFlags() *flagSpec { return newSpec(false, []string{"all,a"}, nil, nil) }

// runKill implements `kill [--all] ID [SIGNAL]` on the container's backend.
func runKill(c *ctx, cl cmdline) error { return c.routed(cl, "kill") }
