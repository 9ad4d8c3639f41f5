package wardruntime

import (
	"fmt"

	"github.com/ward-runtime/ward/internal/version"
)

// command is one subcommand.
type command struct {
	name  string
	flags *flagSpec
	run   func(c *ctx, cl cmdline) error
}

// commands is the explicit table of subcommands ward-runtime interprets.
// Anything else goes to runc unchanged (passthrough.go). The ones that
// start code in a container (create, run, exec) and the ones after which
// ward has work left (delete, list) have files of their own; the rest go to
// the backend that created the container (routed) or to runc (toRunc), and
// are spelled out here, flags and all.
func commands() []command {
	return []command{
		{"create", createFlags(), runCreate},
		{"run", runFlags(), runRun},
		{"exec", execFlags(), runExec},
		{"delete", newSpec(false, []string{"force,f"}, nil, nil), runDelete},
		{"list", listFlags(), runList},
		// `start ID`, `pause ID`, `resume ID`.
		{"start", noFlags(), routed("start")},
		{"pause", noFlags(), routed("pause")},
		{"resume", noFlags(), routed("resume")},
		// `state ID`: the OCI state, from the backend that runs the
		// container (runc and runsc print the same document).
		{"state", noFlags(), runState},
		// `kill [--all] ID [SIGNAL]`.
		{"kill", newSpec(false, []string{"all,a"}, nil, nil), routed("kill")},
		// `ps [--format F] ID [ps args]`: flags before the ID only, what
		// follows the ID are ps(1)'s arguments.
		{"ps", newSpec(true, nil, []string{"format,f"}, nil), routed("ps")},
		// `update [flags] ID`: resource limits only loosen or tighten
		// cgroups, which ward's policy does not judge; they pass through.
		{"update", newSpec(false, nil, []string{
			"resources,r", "blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share",
			"cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "kernel-memory",
			"kernel-memory-tcp", "memory", "cpu-idle", "memory-reservation", "memory-swap",
			"pids-limit", "l3-cache-schema", "mem-bw-schema",
		}, nil), routed("update")},
		// `events [--stats] [--interval D] ID`.
		{"events", newSpec(false, []string{"stats"}, []string{"interval"}, nil), routed("events")},
		// `features`: what runc supports is what a caller may ask of a
		// hardened container, so runc answers.
		{"features", noFlags(), toRunc("features")},
		// `spec`: runc writes its sample config.json; ward judges specs
		// when they run, not when they are written.
		{"spec", newSpec(false, []string{"rootless"}, []string{"bundle,b"}, nil), toRunc("spec")},
	}
}

func noFlags() *flagSpec { return newSpec(false, nil, nil, nil) }

// routed is a subcommand about one container, sent with its flags as given
// to the backend that created the container. The container ID is the first
// operand; the rest (ps's arguments, kill's signal) follow it unchanged.
func routed(sub string) func(*ctx, cmdline) error {
	return func(c *ctx, cl cmdline) error {
		if len(cl.operands) == 0 {
			return c.execBackend(c.defaultTarget(), sub, cl.tokens())
		}
		t, _, err := c.targetOf(cl.operands[0])
		if err != nil {
			return err
		}
		return c.execBackend(t, sub, append(cl.tokens(t.unsupported...), cl.operands...))
	}
}

// toRunc is a subcommand about no container, which runc answers.
func toRunc(sub string) func(*ctx, cmdline) error {
	return func(c *ctx, cl cmdline) error {
		return c.execBackend(c.defaultTarget(), sub, append(cl.tokens(), cl.operands...))
	}
}

func runState(c *ctx, cl cmdline) error {
	if _, err := oneOperand(cl, "state"); err != nil {
		return err
	}
	return routed("state")(c, cl)
}

// runVersion implements `--version`: runc's version lines, which callers
// parse (docker info, podman info), so they come from the backend. ward's
// own line comes first and holds no "version" word: Docker's parser takes
// the last line that does, which stays runc's.
func runVersion(c *ctx) error {
	fmt.Fprintf(c.env.Stdout, "ward-runtime: %s\n", version.Version())
	t := c.defaultTarget()
	return c.env.Exec(t.path, []string{t.path, "--version"}, c.env.Environ)
}
