// Package runtime is ward-runtime: an OCI runtime with runc's command line
// that puts every container through ward's judge before a real runtime
// (runc, crun or gVisor's runsc) runs it.
//
// Container managers (dockerd, podman, containerd's runc shim with
// BinaryName) call it exactly as they call runc. `create` and `run` judge
// the bundle, rewrite its config.json and exec the chosen backend; `exec`
// judges the process the same way; every other subcommand goes to the
// backend that created the container, found through a small state record
// under --root. The decisions are the admission package's; ward-runtime
// holds only the transport (runc's argv, state records, exec of the
// backend). Every subcommand is listed once, in commands().
package wardruntime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ward-runtime/ward/internal/nodeconfig"
)

// Env is what ward-runtime may touch. Tests replace Exec to see the command
// line a backend would get without running it.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv in the binary).
	Getenv func(string) string
	// Exec replaces the process with a backend (syscall.Exec in the
	// binary). It returns only on failure.
	Exec func(path string, argv []string, env []string) error
	// Environ is the environment handed to backends.
	Environ []string
	// Spawn starts ward-runtime itself with args as a detached process
	// (its own session, stdio on /dev/null) that inherits extra from fd 3
	// on, and does not wait for it: the node's supervisor (node.go). nil
	// (tests) spawns nothing, and containers get no supervisor.
	Spawn func(args []string, extra []*os.File) error
	// NodeDir is where the node's supervisor lives ("": the supervisor
	// package's DefaultDir; tests use their own).
	NodeDir string
}

// exitError carries a backend's exit status through to Main.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("backend exited with status %d", e.code) }

// Main runs ward-runtime with args (without the program name) and returns
// the exit status.
func Main(args []string, env *Env) int {
	g, rest, err := parseGlobals(args)
	lg := newLogger(g, env.Stderr)
	if err != nil {
		lg.error(err.Error())
		return 1
	}
	if g.help || len(rest) == 0 && !g.version {
		usage(env.Stdout)
		if g.help {
			return 0
		}
		return 1
	}
	cfg, err := loadConfig(g, env.Getenv)
	if err != nil {
		lg.error(err.Error())
		return 1
	}
	c := &ctx{env: env, g: g, globalArgs: args[:len(args)-len(rest)], cfg: cfg, log: lg}
	if g.version {
		err = runVersion(c)
	} else {
		err = dispatch(c, rest[0], rest[1:])
	}
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		// The backend already said why, in its own words.
		return ee.code
	default:
		lg.error(err.Error())
		return 1
	}
}

func dispatch(c *ctx, name string, args []string) error {
	// ward-runtime's own supervisor, not a command for callers: not in the
	// table, so neither usage nor the tests' command list has them.
	switch name {
	case nodeCommand:
		return runNode(c, cmdline{operands: args})
	}
	i := slices.IndexFunc(commands(), func(cmd command) bool { return cmd.name == name })
	if i < 0 {
		return runPassthrough(c, name, args)
	}
	cmd := commands()[i]
	cl, err := cmd.flags.parse(args)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if cl.bool("help") {
		// runc's own help text is the reference for its flags.
		return c.execBackend(c.defaultTarget(), name, []string{"--help"})
	}
	c.sub = name
	return cmd.run(c, cl)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ward-runtime: an OCI runtime with runc's command line that hardens, sandboxes or rejects every container.")
	fmt.Fprintln(w, "\nUsage: ward-runtime [global flags] COMMAND [flags] [args]\n\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %s\n", cmd.name)
	}
	fmt.Fprintln(w, "  (any other command goes to runc unchanged)")
	fmt.Fprintln(w, `
Global flags (runc's): --root DIR, --log FILE, --log-format text|json, --debug,
  --systemd-cgroup, --rootless true|false|auto.
ward's own (the node configuration, docs/configuration.md): --ward-config FILE
  (env WARD_CONFIG, default `+nodeconfig.DefaultPath+`), --ward-policy FILE (WARD_POLICY),
  --ward-decision-log FILE (WARD_DECISION_LOG), --ward-runc PATH (WARD_RUNC),
  --ward-runsc PATH (WARD_RUNSC).`)
}

// newEnv is the Env of the real binary.
func newEnv() *Env {
	return &Env{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Exec:    execve,
		Environ: os.Environ(),
		Spawn:   spawnSelf,
	}
}

// Run is ward-runtime's entry point for cmd/ward-runtime.
func Run(args []string) int { return Main(args, newEnv()) }
