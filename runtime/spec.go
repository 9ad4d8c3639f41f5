package runtime

func specFlags() *flagSpec { return newSpec(false, []string{"rootless"}, []string{"bundle,b"}, nil) }

// runSpec implements `spec`: runc writes its sample config.json. ward judges
// specs when they run, not when they are written.
func runSpec(c *ctx, cl cmdline) error {
	return c.execBackend(c.defaultTarget(), "spec", append(cl.tokens(), cl.operands...))
}
