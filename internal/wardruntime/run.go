package wardruntime

func runFlags() *flagSpec {
	return newSpec(false,
		[]string{"detach,d", "keep", "no-subreaper", "no-pivot", "no-new-keyring"},
		[]string{"bundle,b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"},
		nil)
}

// runRun implements `run [flags] ID`: create and start in one go, then
// ward becomes the backend, as for create. In the foreground the backend
// removes the container when it exits, after ward is gone: the
// node's supervisor gives back what ward holds for it then (reap.go).
// Waiting as the backend's parent instead would put ward between the
// caller and the container's signals and exit status.
func runRun(c *ctx, cl cmdline) error {
	id, err := oneOperand(cl, "run")
	if err != nil {
		return err
	}
	reap := !cl.bool("detach") && !cl.bool("keep")
	t, _, err := c.prepare(id, &cl, reap, nil)
	if err != nil {
		return err
	}
	return c.execBackend(t, "run", c.containerArgs(t, cl, id))
}
