package landlock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	golandlock "github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// DetectABI returns the running kernel's Landlock ABI, 0 without Landlock.
// Like go-landlock, it counts ABI 6 only when the kernel has the fix for
// signal scoping (erratum 2), so that both agree on what is enforceable.
func DetectABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	if v >= 6 {
		errata, err := ll.LandlockGetErrata()
		if err != nil || errata&0x2 == 0 {
			v = 5
		}
	}
	return v
}

// Enforce restricts the calling OS thread, and every program it executes,
// to r. It is irreversible, and it is meant for a launcher that calls
// execve next (see Launch): it locks the calling goroutine to its thread
// for good, so that the execve happens on the restricted thread, and the
// kernel ends every other thread at that execve. The workload therefore
// starts with the ruleset, and nothing of the workload's ever runs on an
// unrestricted thread. This is go-landlock's own recipe for "enforce, then
// exec" (Config.NewRulesetFD); it spares the launcher the two all-threads
// rounds (no_new_privs, then restrict_self, each signalling every runtime
// thread) that Config.Restrict needs on kernels before ABI 8. entry is the
// program about to run (see Plan).
//
// An audit ruleset is enforced as r.Enforced(); an unrestricted one not
// at all: no domain is created.
//
// It enforces what the kernel supports and returns the rest in the
// Effective's NotEnforced. It fails, leaving the caller to refuse to run
// the workload, when the kernel is older than r.RequireABI or when the
// ruleset cannot be built or applied.
func Enforce(r Ruleset, entry string) (Effective, error) {
	abi := DetectABI()
	if abi > MaxABI {
		abi = MaxABI // go-landlock handles newer rights ward does not ask for
	}
	eff := Degrade(r, abi)
	if err := Check(r, abi); err != nil {
		return eff, err
	}
	r = r.Enforced()
	if abi == 0 || r.Unrestricted() {
		return eff, nil
	}
	grants, err := Plan(r, entry, listDir)
	if err != nil {
		return eff, fmt.Errorf("planning ruleset %q: %w", r.Profile, err)
	}
	var net []golandlock.Rule
	if eff.Net&ll.AccessNetConnectTCP != 0 {
		for _, p := range r.TCPConnect {
			net = append(net, golandlock.ConnectTCP(p))
		}
	}
	if eff.Net&ll.AccessNetBindTCP != 0 {
		for _, p := range r.TCPBind {
			net = append(net, golandlock.BindTCP(p))
		}
	}
	cfg := golandlock.Config{
		HandledAccessFS:  golandlock.AccessFSSet(eff.FS),
		HandledAccessNet: golandlock.AccessNetSet(eff.Net),
		Scoped:           golandlock.ScopedSet(eff.Scoped),
	}
	// Not BestEffort: Degrade already fitted the config to this kernel,
	// and anything go-landlock would still drop must be an error here.
	fd, flags, err := cfg.NewRulesetFD(net...)
	if err != nil {
		return eff, fmt.Errorf("building ruleset %q: %w", r.Profile, err)
	}
	if fd < 0 {
		return eff, nil // nothing handled: nothing to restrict
	}
	defer unix.Close(fd)
	for _, g := range grants {
		if err := addGrant(fd, g, eff.FS); err != nil {
			return eff, fmt.Errorf("granting %s on %s: %w", g.Access, g.Path, err)
		}
	}
	// Never unlocked: were the goroutine to move, the execve could run on
	// a thread without the ruleset; if it ends instead, the runtime ends
	// the thread with it.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return eff, fmt.Errorf("enforcing ruleset %q: setting no_new_privs: %w", r.Profile, err)
	}
	if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
		return eff, fmt.Errorf("enforcing ruleset %q: %w", r.Profile, err)
	}
	return eff, nil
}

// addGrant adds g to the ruleset: one O_PATH open, whose descriptor
// tells a directory from a file (their rights differ) and is the rule's
// anchor, so the path is resolved once. A missing path is skipped.
func addGrant(ruleset int, g Grant, handled uint64) error {
	pfd, err := unix.Open(g.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return err
	}
	rights := g.Access.fsRights(st.Mode&unix.S_IFMT == unix.S_IFDIR) & handled
	if rights == 0 {
		return nil
	}
	return ll.LandlockAddPathBeneathRule(ruleset, &ll.PathBeneathAttr{AllowedAccess: rights, ParentFd: pfd}, 0)
}

// listDir is the real Lister: directories and regular files only.
func listDir(dir string) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(ents))
	for _, e := range ents {
		switch t := e.Type(); {
		case t.IsDir():
			out = append(out, Entry{Name: e.Name(), Dir: true})
		case t.IsRegular():
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, Entry{Name: e.Name(), Exec: info.Mode()&0o111 != 0})
		}
	}
	return out, nil
}
