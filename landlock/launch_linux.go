package landlock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
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

// Launch is ward-init: it applies the container's ruleset to itself and
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
	rs, env, err := loadRuleset(env)
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
	eff, err := Enforce(rs, entry)
	if err != nil {
		fmt.Fprintf(stderr, "ward-init: applying Landlock: %v; refusing to start %q\n", err, args[1])
		return ExitCannotRun
	}
	if len(eff.NotEnforced) > 0 {
		writeNote(stderr, rs, eff)
	}
	err = unix.Exec(name, args[1:], env)
	fmt.Fprintf(stderr, "exec %s: %v\n", name, err)
	if errors.Is(err, unix.ENOENT) {
		return ExitNotFound
	}
	return ExitCannotRun
}

// loadRuleset finds the ruleset and returns env without EnvVar.
func loadRuleset(env []string) (Ruleset, []string, error) {
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
			return Ruleset{}, nil, err
		}
		if err := handOff(enc); err != nil {
			return Ruleset{}, nil, err
		}
		return rs, env, nil
	}
	f, err := os.OpenFile(HandoffPath, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return Ruleset{}, nil, fmt.Errorf("reading the container's ruleset (exec session): %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRulesetSize))
	if err != nil {
		return Ruleset{}, nil, fmt.Errorf("reading the container's ruleset (exec session): %w", err)
	}
	rs, err := Decode(string(b))
	return rs, env, err
}

// handOff leaves the ruleset for exec sessions. The first writer wins: a
// second launcher given a different ruleset in its environment is refused,
// so an exec session cannot replace the container's ruleset with its own.
func handOff(enc string) error {
	f, err := os.OpenFile(HandoffPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o444)
	if errors.Is(err, os.ErrExist) {
		old, rerr := os.ReadFile(HandoffPath)
		if rerr == nil && bytes.Equal(old, []byte(enc)) {
			return nil
		}
		return fmt.Errorf("the container already has a different ruleset at %s", HandoffPath)
	}
	if err != nil {
		return fmt.Errorf("leaving the ruleset for exec sessions: %w", err)
	}
	if _, err := f.WriteString(enc); err != nil {
		f.Close()
		return fmt.Errorf("leaving the ruleset for exec sessions: %w", err)
	}
	if err := f.Close(); err != nil {
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
// container's log) when the kernel could not enforce all of the ruleset.
type Note struct {
	Launcher    string   `json:"ward-init"`
	Profile     string   `json:"profile"`
	ABI         int      `json:"abi"`
	Enforced    bool     `json:"enforced"`
	NotEnforced []string `json:"notEnforced"`
}

func writeNote(w io.Writer, rs Ruleset, eff Effective) {
	b, err := json.Marshal(Note{Launcher: "landlock", Profile: rs.Profile, ABI: eff.ABI, Enforced: eff.ABI > 0, NotEnforced: eff.NotEnforced})
	if err != nil {
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}
