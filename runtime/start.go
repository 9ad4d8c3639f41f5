package runtime

// runStart implements `start ID` on the backend that created the container.
func runStart(c *ctx, cl cmdline) error {
	return c.routed(cl, "start")
}

// routed sends a subcommand about one container, with its flags as given,
// to the backend that created the container. The container ID is the first
// operand; the rest (ps's arguments, kill's signal) follow it unchanged.
func (c *ctx) routed(cl cmdline, sub string) error {
	if len(cl.operands) == 0 {
		return c.execBackend(c.defaultTarget(), sub, cl.tokens())
	}
	id := cl.operands[0]
	t, _, err := c.targetOf(id)
	if err != nil {
		return err
	}
	args := append(cl.tokens(t.unsupported...), cl.operands...)
	return c.execBackend(t, sub, args)
}
