package runtime

// runFeatures implements `features`: what runc supports is what a caller
// may ask of a hardened container, so runc answers.
func runFeatures(c *ctx, cl cmdline) error {
	return c.execBackend(c.defaultTarget(), "features", append(cl.tokens(), cl.operands...))
}
