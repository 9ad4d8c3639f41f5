package landlock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

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

// Enforce restricts the calling process, and everything it executes, to r.
// It is irreversible. entry is the program about to run (see Plan).
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
	if abi == 0 {
		return eff, nil
	}
	grants, err := Plan(r, entry, listDir)
	if err != nil {
		return eff, fmt.Errorf("planning ruleset %q: %w", r.Profile, err)
	}
	rules := make([]golandlock.Rule, 0, len(grants)+len(r.TCPConnect)+len(r.TCPBind))
	for _, g := range grants {
		var st unix.Stat_t
		if err := unix.Stat(g.Path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // rules for missing places are skipped
			}
			return eff, fmt.Errorf("granting %s on %s: %w", g.Access, g.Path, err)
		}
		rights := g.Access.fsRights(st.Mode&unix.S_IFMT == unix.S_IFDIR) & eff.FS
		if rights == 0 {
			continue
		}
		rules = append(rules, golandlock.PathAccess(golandlock.AccessFSSet(rights), g.Path).IgnoreIfMissing())
	}
	if eff.Net&ll.AccessNetConnectTCP != 0 {
		for _, p := range r.TCPConnect {
			rules = append(rules, golandlock.ConnectTCP(p))
		}
	}
	if eff.Net&ll.AccessNetBindTCP != 0 {
		for _, p := range r.TCPBind {
			rules = append(rules, golandlock.BindTCP(p))
		}
	}
	cfg := golandlock.Config{
		HandledAccessFS:  golandlock.AccessFSSet(eff.FS),
		HandledAccessNet: golandlock.AccessNetSet(eff.Net),
		Scoped:           golandlock.ScopedSet(eff.Scoped),
	}
	// Not BestEffort: Degrade already fitted the config to this kernel,
	// and anything go-landlock would still drop must be an error here.
	if err := cfg.Restrict(rules...); err != nil {
		return eff, fmt.Errorf("enforcing ruleset %q: %w", r.Profile, err)
	}
	return eff, nil
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
