package runtime

func updateFlags() *flagSpec {
	return newSpec(false, nil, []string{
		"resources,r", "blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share",
		"cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "kernel-memory",
		"kernel-memory-tcp", "memory", "cpu-idle", "memory-reservation", "memory-swap",
		"pids-limit", "l3-cache-schema", "mem-bw-schema",
	}, nil)
}

// runUpdate implements `update [flags] ID` on the container's backend.
// Resource limits only loosen or tighten cgroups, which ward's policy does
// not judge; they pass through.
func runUpdate(c *ctx, cl cmdline) error { return c.routed(cl, "update") }
