package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/atomicfile"
)

// runsc through runc's shim code.
//
// runc binds a container's stdio when the container is created; runsc binds
// a pod's app container (a subcontainer of the pod's sandbox) when it is
// started, from `runsc start`'s own stdio. runc's shim code runs `start`
// with stdout captured into a pipe it reads to EOF, so under plain runsc the
// subcontainer inherits that capture pipe: `start` never returns, the
// container's output goes nowhere, and the pod cannot be stopped.
//
// The wrapper fixes that without touching runc's shim code: runc's shim
// calls it as its runtime binary. On `create` of a subcontainer it runs
// `runsc create` and leaves behind a small helper that holds the stdio the
// shim gave create (the container's real pipes). `start` wakes the helper,
// which runs `runsc start` with those pipes and reports the result back. The
// helper exits once start is done; nothing holds the pipes but the
// container.
//
// runsc also writes the *sandbox's* pid into a subcontainer's pid file, so
// runc's shim, which learns of exits by reaping that pid, would never see an
// app container exit before its whole pod does. So the helper stays: after
// start it runs `runsc wait` and exits with the container's status, and its
// pid, not the sandbox's, goes into the pid file. The shim reaps the helper
// as it would reap runc's container process.
//
// Every other call execs runsc directly.

// Arguments that select the wrapper's modes in the shim binary: argv, not
// the environment, so that nothing an operator sets for another binary
// (shims inherit containerd's environment) can switch the shim into them.
const (
	// argWrapRunsc RUNSC FLAGS-JSON RUNC-ARGS...: the wrapper.
	argWrapRunsc = "--ward-runsc-wrapper"
	// argWrapStart DIR RUNSC FLAGS-JSON RUNC-ARGS...: the start helper,
	// waiting in the rendezvous directory DIR.
	argWrapStart = "--ward-runsc-start"
)

// runscWrapperScript is the runtime binary given to runc's shim for gVisor.
func runscWrapperScript(self, runsc string, flags []string) (string, error) {
	fj, err := flagsJSON(flags)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("#!/bin/sh\n# Written by containerd-shim-ward-v2: runsc for runc's shim code (see shim/runscwrap.go).\nexec %s %s %s %s \"$@\"\n",
		shellQuote(self), argWrapRunsc, shellQuote(runsc), shellQuote(fj)), nil
}

func flagsJSON(flags []string) (string, error) {
	if flags == nil {
		return "[]", nil
	}
	fj, err := json.Marshal(flags)
	return string(fj), err
}

// WrapperMode reports whether the process was started as the runsc wrapper
// or its start helper (args are os.Args[1:]), and if so runs it and returns
// the exit status.
func WrapperMode(args []string) (int, bool) {
	if len(args) == 0 || args[0] != argWrapRunsc && args[0] != argWrapStart {
		return 0, false
	}
	mode, args := args[0], args[1:]
	dir := ""
	if mode == argWrapStart {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "ward runsc wrapper: start helper without its directory")
			return 2, true
		}
		dir, args = args[0], args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "ward runsc wrapper: want RUNSC FLAGS-JSON before runc's arguments")
		return 2, true
	}
	runsc := args[0]
	var flags []string
	if err := json.Unmarshal([]byte(args[1]), &flags); err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: bad runsc flags %q: %v\n", args[1], err)
		return 2, true
	}
	if dir != "" {
		return startHelper(runsc, flags, dir, args[2:]), true
	}
	return wrapRunsc(runsc, flags, args[2:]), true
}

// runcCall is a runtime command line as go-runc writes it:
// [global flags] subcommand [flags] [id].
type runcCall struct {
	globals []string
	sub     string
	rest    []string
}

// Global flags go-runc passes with a separate value.
var valueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true}

func parseCall(args []string) runcCall {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return runcCall{globals: args[:i], sub: a, rest: args[i+1:]}
		}
		if valueFlags[a] {
			i++
		}
	}
	return runcCall{globals: args}
}

func (c runcCall) flag(name string) string {
	for i, a := range c.rest {
		if a == name && i+1 < len(c.rest) {
			return c.rest[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func (c runcCall) globalFlag(name string) string {
	for i, a := range c.globals {
		if a == name && i+1 < len(c.globals) {
			return c.globals[i+1]
		}
	}
	return ""
}

// id is the container id, the last argument.
func (c runcCall) id() string {
	if len(c.rest) == 0 {
		return ""
	}
	return c.rest[len(c.rest)-1]
}

// rendezvous is where a subcontainer's helper waits: under runsc's root.
func (c runcCall) rendezvous() string {
	root := c.globalFlag("--root")
	if root == "" {
		root = "/var/run/runsc"
	}
	return filepath.Join(root, "ward-start", c.id())
}

func wrapRunsc(runsc string, flags []string, args []string) int {
	call := parseCall(args)
	full := append(append(append([]string{}, flags...), call.globals...), append([]string{call.sub}, call.rest...)...)
	switch call.sub {
	case "create":
		if isSubcontainer(call.flag("--bundle")) {
			return createSub(runsc, flags, full, call)
		}
	case "start":
		if _, err := os.Stat(call.rendezvous()); err == nil {
			return startSub(call)
		}
	case "delete", "kill":
		// A container deleted without being started: release its helper.
		if call.sub == "delete" {
			abortHelper(call)
		}
	}
	if err := syscall.Exec(runsc, append([]string{runsc}, full...), os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: exec %s: %v\n", runsc, err)
	}
	return 1
}

// isSubcontainer reports whether the bundle is a pod app container that
// runsc will run inside its pod's sandbox, with a terminal-less stdio.
func isSubcontainer(dir string) bool {
	if dir == "" {
		dir = "."
	}
	b, err := bundle.Load(dir, 0)
	if err != nil {
		return false
	}
	if b.Spec.Process != nil && b.Spec.Process.Terminal {
		return false // runsc binds a terminal at create
	}
	return b.Spec.Annotations[bundle.AnnotationContainerType] == "container"
}

func run(bin string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: %v\n", err)
		return 1
	}
	return 0
}

func createSub(runsc string, flags, full []string, call runcCall) int {
	dir := call.rendezvous()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: %v\n", err)
		return 1
	}
	for _, f := range []string{"go", "done"} {
		if err := unix.Mkfifo(filepath.Join(dir, f), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			fmt.Fprintf(os.Stderr, "ward runsc wrapper: %v\n", err)
			return 1
		}
	}
	// The helper holds this process's stdio: the container's pipes.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: %v\n", err)
		return 1
	}
	fj, err := flagsJSON(flags)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: %v\n", err)
		return 1
	}
	startArgs := append([]string{argWrapStart, dir, runsc, fj}, call.globals...)
	h := exec.Command(self, append(startArgs, "start", call.id())...)
	h.Stdin, h.Stdout, h.Stderr = os.Stdin, os.Stdout, os.Stderr
	h.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := h.Start(); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: starting helper: %v\n", err)
		return 1
	}
	if rc := run(runsc, full, nil, io.Discard, os.Stderr); rc != 0 {
		abortHelper(call)
		return rc
	}
	if pf := call.flag("--pid-file"); pf != "" {
		if err := atomicfile.Write(pf, []byte(strconv.Itoa(h.Process.Pid)), 0o644, true); err != nil {
			fmt.Fprintf(os.Stderr, "ward runsc wrapper: writing pid file: %v\n", err)
			abortHelper(call)
			return 1
		}
	}
	h.Process.Release()
	return 0
}

// startHelper waits for the go signal, then runs `runsc start` with the
// stdio it inherited and reports the exit status on the done FIFO.
func startHelper(runsc string, flags []string, dir string, args []string) int {
	goF, err := os.OpenFile(filepath.Join(dir, "go"), os.O_RDONLY, 0)
	if err != nil {
		return 1
	}
	var b [1]byte
	n, _ := goF.Read(b[:])
	goF.Close()
	if n != 1 || b[0] != 's' {
		os.RemoveAll(dir)
		return 0
	}
	// The container's stdio are runsc start's own, so its stderr cannot be
	// captured (the container would hold the capture pipe too); runsc
	// writes its errors to the --log file, where runc's shim reads them.
	rc := run(runsc, append(append([]string{}, flags...), args...), os.Stdin, os.Stdout, os.Stderr)
	done, err := os.OpenFile(filepath.Join(dir, "done"), os.O_WRONLY, 0)
	if err == nil {
		fmt.Fprintf(done, "%d\n", rc)
		done.Close()
	}
	if rc != 0 {
		return 255
	}
	// From here on only the container holds its stdio.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for fd := 0; fd < 3; fd++ {
			unix.Dup2(int(null.Fd()), fd)
		}
		null.Close()
	}
	call := parseCall(args)
	var out strings.Builder
	waitArgs := append(append(append([]string{}, flags...), call.globals...), "wait", call.id())
	if run(runsc, waitArgs, nil, &out, io.Discard) != 0 {
		return 255
	}
	var res struct {
		ExitStatus int `json:"exitStatus"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		return 255
	}
	return res.ExitStatus & 0xff
}

func startSub(call runcCall) int {
	dir := call.rendezvous()
	defer os.RemoveAll(dir)
	goF, err := openWriter(filepath.Join(dir, "go"), helperWait)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: the start helper of %s is gone: %v\n", call.id(), err)
		return 1
	}
	_, err = goF.Write([]byte{'s'})
	goF.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: waking the start helper: %v\n", err)
		return 1
	}
	done, err := os.OpenFile(filepath.Join(dir, "done"), os.O_RDONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: %v\n", err)
		return 1
	}
	defer done.Close()
	data, _ := io.ReadAll(io.LimitReader(done, 1<<16))
	status, msg, _ := strings.Cut(string(data), "\n")
	rc, err := strconv.Atoi(status)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ward runsc wrapper: start helper of %s said %q\n", call.id(), data)
		return 1
	}
	os.Stderr.WriteString(msg)
	return rc
}

// helperWait bounds how long start waits for the start helper to open its
// end of the go FIFO. create returns as soon as the helper is forked, so on
// a loaded node start can come first; a helper that is still not there
// after this long is gone.
const helperWait = 10 * time.Second

// openWriter opens the FIFO at path for writing without blocking on a
// reader that will never come: ENXIO (no reader yet) is retried until
// wait has passed.
func openWriter(path string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0)
		if !errors.Is(err, unix.ENXIO) || time.Now().After(deadline) {
			return f, err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// abortHelper tells a waiting helper to exit without starting anything.
func abortHelper(call runcCall) {
	dir := call.rendezvous()
	if f, err := os.OpenFile(filepath.Join(dir, "go"), os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		f.Write([]byte{'x'})
		f.Close()
	}
	os.RemoveAll(dir)
}
