package runtime

func runFlags() *flagSpec {
	return newSpec(false,
		[]string{"detach,d", "keep", "no-subreaper", "no-pivot", "no-new-keyring"},
		[]string{"bundle,b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"},
		nil)
}

// runRun implements `run [flags] ID`: create and start in one go. Detached,
// ward becomes the backend. In the foreground the backend removes the
// container when it exits, so ward waits for it (forwarding signals) and
// then removes its own record too, unless --keep asks to keep the
// container.
func runRun(c *ctx, cl cmdline) error {
	id, err := oneOperand(cl, "run")
	if err != nil {
		return err
	}
	t, err := c.prepare(id, &cl, "create")
	if err != nil {
		return err
	}
	args := c.containerArgs(t, cl, id, createOnlyRunc())
	if cl.bool("detach") || cl.bool("keep") {
		return c.execBackend(t, "run", args)
	}
	err = c.runBackend(t, "run", args)
	if rerr := c.records().remove(id); rerr != nil {
		c.log.warn("ward-runtime: " + rerr.Error())
	}
	if t.runsc() {
		c.cleanupRunscRoot(t.root)
	}
	return err
}
