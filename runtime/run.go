package runtime

func runFlags() *flagSpec {
	return newSpec(false,
		[]string{"detach,d", "keep", "no-subreaper", "no-pivot", "no-new-keyring"},
		[]string{"bundle,b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"},
		nil)
}

// runRun implements `run [flags] ID`: create and start in one go, then
// ward becomes the backend, as for create. In the foreground the backend
// removes the container when it exits, but ward is gone by then: its record
// stays until `list` prunes it or a new container reuses the ID. Waiting as
// a parent instead would cost a fork and signal forwarding on every run;
// container managers use create and start, so foreground run is for people
// and scripts.
func runRun(c *ctx, cl cmdline) error {
	id, err := oneOperand(cl, "run")
	if err != nil {
		return err
	}
	t, err := c.prepare(id, &cl, "create")
	if err != nil {
		return err
	}
	return c.execBackend(t, "run", c.containerArgs(t, cl, id, createOnlyRunc()))
}
