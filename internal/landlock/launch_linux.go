package landlock

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// Exit statuses of a launcher that could not start the workload, as shells
// use them.
const (
	// ExitCannotRun: the ruleset could not be applied, or execve failed.
	ExitCannotRun = 126
	// ExitNotFound: the entrypoint was not found.
	ExitNotFound = 127
	// ExitUsage: the launcher was started without a program to run.
	ExitUsage = 2
)

// maxRulesetSize bounds the handoff file an exec session reads.
const maxRulesetSize = 256 << 10

// Launch is ward-init: it applies the container's ruleset to its own thread and
// replaces itself with args[1:], with env minus EnvVar. It returns only
// on failure, with the exit status the launcher should end with; the
// workload never starts unrestricted.
//
// The container's first process finds the ruleset in EnvVar and leaves a
// copy at HandoffPath, before restricting itself (after which it cannot
// write there); an exec session has no EnvVar and reads that copy, so it
// gets exactly the first process's ruleset. Nothing is forked: the
// workload keeps the launcher's PID, and with it signals and exit status;
// its argv[0], environment and working directory are what the spec says.
func Launch(args, env []string, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintf(stderr, "ward-init: usage: %s PROGRAM [ARG...] (ward prepends it to a container's process)\n", LauncherPath)
		return ExitUsage
	}
	rs, env, first, err := loadRuleset(env)
	if err != nil {
		fmt.Fprintf(stderr, "ward-init: %v; refusing to start %q\n", err, args[1])
		return ExitCannotRun
	}
	// The same lookup, with the same error text, that runc does before it
	// starts a process: PATH comes from the container's environment, which
	// is the launcher's own.
	name, err := exec.LookPath(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return ExitNotFound
	}
	entry, err := resolve(name)
	if err != nil {
		fmt.Fprintf(stderr, "exec %s: %v\n", name, err)
		return ExitNotFound
	}
	filter, found, err := loadFilter(SeccompPath)
	var own prog.Program
	var haveOwn bool
	if err == nil {
		own, haveOwn, err = loadFilter(ProfileSeccompPath)
	}
	if err == nil && haveOwn && (!found || own.Own > 0 && !filter.Notifies()) {
		// The profile's filter lets through what the baseline sends to
		// the supervisor: alone, it would allow what the profile refuses.
		err = fmt.Errorf("%s is there without ward's baseline at %s", ProfileSeccompPath, SeccompPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ward-init: %v; refusing to start %q\n", err, args[1])
		return ExitCannotRun
	}
	// A filter that sends calls to a listener needs ward's supervisor:
	// without it those calls would fail with ENOSYS instead of being
	// decided, so the workload does not start.
	sup := -1
	if found && filter.Notifies() {
		if sup, err = DialSupervisor(SupervisorPath); err != nil {
			fmt.Fprintf(stderr, "ward-init: %v; refusing to start %q\n", err, args[1])
			return ExitCannotRun
		}
	}
	eff, err := Enforce(rs, entry)
	if err != nil {
		fmt.Fprintf(stderr, "ward-init: applying Landlock: %v; refusing to start %q\n", err, args[1])
		return ExitCannotRun
	}
	// An audit ruleset is reported once, by the container's first
	// process: exec sessions' output is the operator's.
	if len(eff.NotEnforced) > 0 || rs.Audit && first {
		writeNote(stderr, rs, eff)
	}
	// Last before execve: the filters need not allow what the launcher
	// does, only what the workload does. The workload's profile first:
	// where both filters answer ERRNO the kernel keeps the newer one's
	// errno, which is the baseline's, as when runc installed the profile
	// before ward-init the baseline (seccompbpf.Compose).
	if haveOwn {
		if _, err := prog.Install(own, 0); err != nil {
			fmt.Fprintf(stderr, "ward-init: the container's seccomp profile: %v; refusing to start %q\n", err, args[1])
			return ExitCannotRun
		}
	}
	if found {
		var flags uintptr
		if sup >= 0 {
			flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
		listener, err := prog.Install(filter, flags)
		if err == nil && sup >= 0 {
			err = HandListener(sup, listener)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ward-init: %v; refusing to start %q\n", err, args[1])
			return ExitCannotRun
		}
	}
	err = unix.Exec(name, args[1:], env)
	fmt.Fprintf(stderr, "exec %s: %v\n", name, err)
	if errors.Is(err, unix.ENOENT) {
		return ExitNotFound
	}
	return ExitCannotRun
}

// loadRuleset finds the ruleset and returns env without EnvVar; first is
// true for the container's first process (the ruleset was in env).
func loadRuleset(env []string) (rs Ruleset, _ []string, first bool, _ error) {
	enc, found := "", false
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		v, ok := strings.CutPrefix(kv, EnvVar+"=")
		if ok {
			enc, found = v, true
		}
		return ok
	})
	if found {
		rs, err := Decode(enc)
		if err != nil {
			return Ruleset{}, nil, false, err
		}
		if err := handOff(enc); err != nil {
			return Ruleset{}, nil, false, err
		}
		return rs, env, true, nil
	}
	b, err := readHandoff()
	if err != nil {
		return Ruleset{}, nil, false, fmt.Errorf("reading the container's ruleset (exec session): %w", err)
	}
	rs, err = Decode(string(b))
	return rs, env, false, err
}

// loadFilter reads a compiled seccomp filter: ward's baseline
// (SeccompPath) or the container's own profile (ProfileSeccompPath). Its
// absence means runc installs that profile (found is false); a file that
// is there but unreadable or damaged stops the launcher.
func loadFilter(path string) (p prog.Program, found bool, err error) {
	b, err := readFile(path, prog.MaxFileSize)
	if errors.Is(err, unix.ENOENT) {
		return prog.Program{}, false, nil
	}
	if err != nil {
		return prog.Program{}, false, fmt.Errorf("reading the seccomp filter %s: %w", path, err)
	}
	p, err = prog.Unmarshal(b, prog.NativeAudit())
	if err != nil {
		return prog.Program{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return p, true, nil
}

// The handoff file is read and written with plain system calls: the os
// package would set up its poller (epoll, eventfd) for a file read once.

// readHandoff reads HandoffPath, at most maxRulesetSize bytes.
func readHandoff() ([]byte, error) { return readFile(HandoffPath, maxRulesetSize) }

// readFile reads a file of at most limit bytes.
func readFile(path string, limit int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 4096)
	for {
		if len(b) > limit {
			return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
		}
		if len(b) == cap(b) {
			b = slices.Grow(b, len(b))
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// handOff leaves the ruleset for exec sessions. The first writer wins: a
// second launcher given a different ruleset in its environment is refused,
// so an exec session cannot replace the container's ruleset with its own.
func handOff(enc string) error {
	fd, err := unix.Open(HandoffPath, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o444)
	if err == unix.EEXIST {
		old, rerr := readHandoff()
		if rerr == nil && string(old) == enc {
			return nil
		}
		return fmt.Errorf("the container already has a different ruleset at %s", HandoffPath)
	}
	if err != nil {
		return fmt.Errorf("leaving the ruleset for exec sessions: %w", err)
	}
	for b := []byte(enc); len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("leaving the ruleset for exec sessions: %w", err)
		}
		b = b[n:]
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("leaving the ruleset for exec sessions: %w", err)
	}
	return nil
}

// resolve makes name absolute, links resolved, as Plan wants the entry.
func resolve(name string) (string, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// Note is the one-line JSON report a launcher writes to stderr (the
// container's log) when the kernel could not enforce all of the ruleset,
// or, for an audit ruleset, what the ruleset would refuse.
type Note struct {
	Launcher    string   `json:"ward-init"`
	Profile     string   `json:"profile"`
	ABI         int      `json:"abi"`
	Enforced    bool     `json:"enforced"`
	NotEnforced []string `json:"notEnforced"`
	Audit       bool     `json:"audit,omitempty"`
	WouldRefuse []string `json:"wouldRefuse,omitempty"`
}

// writeNote writes n as one JSON line, with the JSON helpers of Encode
// rather than encoding/json, which ward-init does not otherwise need (a
// test checks that encoding/json reads it back into the same Note).
func writeNote(w io.Writer, rs Ruleset, eff Effective) {
	n := Note{Launcher: "landlock", Profile: rs.Profile, ABI: eff.ABI, Enforced: eff.ABI > 0 && !rs.Audit, NotEnforced: eff.NotEnforced}
	if rs.Audit {
		n.Audit, n.WouldRefuse = true, rs.WouldRefuse()
	}
	w.Write(n.appendJSON(nil))
}

func (n Note) appendJSON(b []byte) []byte {
	b = append(b, `{"ward-init":`...)
	b = appendJSONString(b, n.Launcher)
	b = append(b, `,"profile":`...)
	b = appendJSONString(b, n.Profile)
	b = append(b, `,"abi":`...)
	b = strconv.AppendInt(b, int64(n.ABI), 10)
	b = append(b, `,"enforced":`...)
	b = strconv.AppendBool(b, n.Enforced)
	b = appendStrings(append(b, `,"notEnforced":`...), n.NotEnforced)
	if n.Audit {
		b = append(b, `,"audit":true`...)
	}
	if len(n.WouldRefuse) > 0 {
		b = appendStrings(append(b, `,"wouldRefuse":`...), n.WouldRefuse)
	}
	return append(b, "}\n"...)
}
