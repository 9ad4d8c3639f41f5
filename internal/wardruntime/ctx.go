package wardruntime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/internal/policycache"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/policy"
)

// ctx is one invocation: the environment, the parsed global flags and the
// configuration.
type ctx struct {
	env *Env
	g   globals
	// globalArgs are the global flags as the caller wrote them, for a
	// supervisor that must see the same configuration (node.go).
	globalArgs []string
	cfg        nodeconfig.Config
	log        *logger
	sub        string
}

// root is the state root: --root, or the configured default.
func (c *ctx) root() string {
	if c.g.rootSet && c.g.root != "" {
		return c.g.root
	}
	return c.cfg.Runtime.Root
}

// records is where ward keeps its per-container records.
func (c *ctx) records() store { return store{dir: filepath.Join(c.root(), "ward")} }

// target is a backend ready to be invoked.
type target struct {
	backend policy.Backend
	path    string
	flags   []string
	root    string
	dialect backend.Dialect
	// unsupported are the runc flags the backend lacks, dropped from what
	// is passed on.
	unsupported []string
}

// runsc reports whether the backend speaks runsc's dialect.
func (t target) runsc() bool { return t.dialect == backend.DialectRunsc }

// targetFor is how ward-runtime invokes a resolved backend: under the
// caller's --root, in the backend's own directory, unless the node
// configuration gives it a root of its own.
func (c *ctx) targetFor(rt backend.Runtime) (target, error) {
	if err := notSelf(rt.Path); err != nil {
		return target{}, err
	}
	t := target{backend: rt.Name, path: rt.Path, flags: rt.Flags, root: rt.Root, dialect: rt.Dialect, unsupported: rt.Unsupported}
	if t.root == "" {
		t.root = filepath.Join(c.root(), rt.StateName)
	}
	return t, nil
}

// notSelf refuses a backend that is ward-runtime itself (installed as
// "runc" earlier in PATH, say), which would recurse forever.
func notSelf(path string) error {
	self, err1 := os.Stat("/proc/self/exe")
	other, err2 := os.Stat(path)
	if err1 == nil && err2 == nil && os.SameFile(self, other) {
		return fmt.Errorf("backend %s is ward-runtime itself; configure the real runtime's path", path)
	}
	return nil
}

// defaultTarget is runc, for commands about no particular container. An
// unresolvable runc still yields a target, so the error comes from exec
// with the binary's name in it.
func (c *ctx) defaultTarget() target {
	table, err := c.cfg.Table()
	if err == nil {
		if rt, err := table.Resolve(policy.Runc, ""); err == nil {
			if t, err := c.targetFor(rt); err == nil {
				return t
			}
		}
	}
	bin := "runc"
	if s, ok := table[policy.Runc]; ok {
		bin = s.Binary
	}
	return target{backend: policy.Runc, path: bin, root: filepath.Join(c.root(), "runc"), dialect: backend.DialectRunc}
}

// targetOf is the backend that created container id: from its record, or
// runc when ward has none (a container ward never saw lives nowhere else).
func (c *ctx) targetOf(id string) (target, *Record, error) {
	r, err := c.records().load(id)
	if errors.Is(err, errNoRecord) {
		return c.defaultTarget(), nil, nil
	}
	if err != nil {
		return target{}, nil, err
	}
	if err := notSelf(r.Runtime); err != nil {
		return target{}, nil, err
	}
	return r.target(), r, nil
}

// argv is the full command line for a backend subcommand.
func (c *ctx) argv(t target, sub string, args []string) []string {
	out := []string{t.path}
	out = append(out, t.flags...)
	out = append(out, c.g.backendGlobals(t.runsc(), t.root)...)
	out = append(out, sub)
	return append(out, args...)
}

// execBackend replaces ward-runtime with the backend. The backend inherits
// every file descriptor the caller passed (console sockets, preserved fds,
// stdio), its pid is the one the caller waits for, and its exit status and
// log lines are the caller's to read, exactly as if it had been called
// directly.
func (c *ctx) execBackend(t target, sub string, args []string) error {
	argv := c.argv(t, sub, args)
	c.log.debugf("ward-runtime: exec %q", argv)
	if err := c.env.Exec(t.path, argv, c.env.Environ); err != nil {
		return fmt.Errorf("executing %s: %w", t.path, err)
	}
	return nil
}

// runBackend runs the backend as a child and waits, forwarding signals to
// it, for subcommands after which ward still has work (delete) or
// whose answer ward needs (the reaper's state). A non-zero exit comes back
// as *exitError.
func (c *ctx) runBackend(t target, sub string, args []string) error {
	argv := c.argv(t, sub, args)
	c.log.debugf("ward-runtime: run %q", argv)
	cmd := exec.Command(t.path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.env.Stdin, c.env.Stdout, c.env.Stderr
	cmd.Env = c.env.Environ
	cmd.ExtraFiles = inheritedFiles()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", t.path, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				// SIGCHLD and SIGURG (the Go runtime's preemption signal) are
				// ward's own business, not the container's.
				if s == syscall.SIGCHLD || s == syscall.SIGURG {
					continue
				}
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return &exitError{code: code}
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", t.path, err)
	}
	return nil
}

// inheritedFiles returns the descriptors above stderr that ward-runtime
// was started with (runc's --preserve-fds hands them to the container), so
// that a child backend gets them at the same numbers.
func inheritedFiles() []*os.File {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	max := 2
	open := map[int]bool{}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err != nil || fd < 3 {
			continue
		}
		flags, err := fcntlGetfd(fd)
		if err != nil || flags&syscall.FD_CLOEXEC != 0 {
			// Go opens everything close-on-exec; those are ward's own.
			continue
		}
		open[fd] = true
		if fd > max {
			max = fd
		}
	}
	if len(open) == 0 {
		return nil
	}
	files := make([]*os.File, max-2)
	for fd := range open {
		files[fd-3] = os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd))
	}
	return files
}

// admitter builds the node's admission path for this call; supervisor
// is the container's supervisor socket (create and run), "" for none.
func (c *ctx) admitter(supervisor string) (*admission.Admitter, error) {
	for _, n := range c.cfg.Notes {
		c.log.warn("ward-runtime: " + n)
	}
	// A call decides one container: the policy comes from the cache
	// under the state directory, parsed only when it changed.
	cache := policycache.Dir(filepath.Join(c.cfg.StateDir, "policy-cache"))
	// ward-runtime runs in the node's namespaces (its caller, a shim or
	// conmon, does) and has entered none of a container's yet: its own are
	// the node's where PID 1's cannot be read, so that a namespace joined
	// by path (Docker's --network host is /var/run/docker/netns/default)
	// is still known for the node's.
	return admission.New(c.cfg, admission.Options{Door: admission.DoorRuntime, Launcher: judge.Launcher(), FilterDir: seccompbpf.DefaultDir,
		LoadPolicy: cache.Load, Supervisor: supervisor, NodeNamespaces: nodefacts.OwnNamespaces()})
}
