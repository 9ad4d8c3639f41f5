package runtime

func eventsFlags() *flagSpec { return newSpec(false, []string{"stats"}, []string{"interval"}, nil) }

// runEvents implements `events [--stats] [--interval D] ID` on the
// container's backend.
func runEvents(c *ctx, cl cmdline) error { return c.routed(cl, "events") }
