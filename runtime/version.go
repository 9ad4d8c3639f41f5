package runtime

// runVersion implements `--version`: runc's version lines, which callers
// parse (docker info, podman info), so they come from the backend.
func runVersion(c *ctx) error {
	t := c.defaultTarget()
	argv := []string{t.path, "--version"}
	if err := c.env.Exec(t.path, argv, c.env.Environ); err != nil {
		return err
	}
	return nil
}
