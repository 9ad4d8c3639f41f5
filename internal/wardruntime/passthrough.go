package wardruntime

import "fmt"

// runPassthrough hands a subcommand ward does not interpret (checkpoint,
// a runc subcommand newer than ward) to the backend of the container it
// names, or to runc. `restore` creates a container from a bundle, so it is
// judged like create: nothing reaches a runtime unjudged.
func runPassthrough(c *ctx, name string, args []string) error {
	if name == "restore" {
		return runRestore(c, args)
	}
	// Without the subcommand's flag table ward cannot tell flag values from
	// operands; a word that names a container ward knows is taken as the
	// container.
	for _, a := range args {
		if checkID(a) != nil {
			continue
		}
		if t, rec, err := c.targetOf(a); err == nil && rec != nil {
			return c.execBackend(t, name, args)
		}
	}
	return c.execBackend(c.defaultTarget(), name, args)
}

func restoreFlags() *flagSpec {
	return newSpec(false,
		[]string{"tcp-established", "ext-unix-sk", "shell-job", "file-locks", "detach,d",
			"no-subreaper", "no-pivot", "auto-dedup", "lazy-pages"},
		[]string{"console-socket", "image-path", "work-path", "manage-cgroups-mode", "bundle,b",
			"pid-file", "lsm-profile", "lsm-mount-context"},
		[]string{"empty-ns"})
}

// runRestore judges the bundle of `restore` like create's. Only runc can
// restore a runc checkpoint; a bundle the policy sends elsewhere is
// refused.
func runRestore(c *ctx, args []string) error {
	cl, err := restoreFlags().parse(args)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	id, err := oneOperand(cl, "restore")
	if err != nil {
		return err
	}
	t, _, err := c.prepare(id, &cl, false, func(t target) error {
		if t.runsc() {
			return fmt.Errorf("policy sends container %s to %s, which cannot restore a runc checkpoint", id, t.backend)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if u := cl.unknown(restoreFlags()); len(u) > 0 {
		c.log.debugf("ward-runtime: restore flags ward does not know, passed on: %v", u)
	}
	return c.execBackend(t, "restore", append(cl.tokens(), id))
}
