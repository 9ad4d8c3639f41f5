package landlock

import (
	"fmt"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Effective is what a kernel can enforce of a ruleset.
type Effective struct {
	// ABI is the kernel's Landlock ABI; 0 when Landlock is unavailable.
	ABI int
	// FS, Net and Scoped are the handled rights, as landlock_create_ruleset
	// takes them.
	FS, Net, Scoped uint64
	// NotEnforced names, one line each, what the ruleset asks for and the
	// kernel cannot enforce.
	NotEnforced []string
}

// Degrade computes what a kernel with Landlock ABI abi enforces of r:
// everything it can, the rest named in NotEnforced. It never fails; whether
// a shortfall is acceptable is RequireABI's business (see Check).
//
// It judges r.Enforced(), and an unrestricted ruleset needs nothing.
func Degrade(r Ruleset, abi int) Effective {
	e := Effective{ABI: abi}
	r = r.Enforced()
	if r.Unrestricted() {
		return e
	}
	if abi < 1 {
		e.NotEnforced = append(e.NotEnforced, "filesystem: no Landlock on this kernel (gVisor does not implement it)")
	} else {
		e.FS = fsHandled
		if abi < 2 {
			// ABI 1 refuses every cross-directory rename and link
			// rather than leaving them open: stricter, not weaker.
			e.FS &^= ll.AccessFSRefer
			e.NotEnforced = append(e.NotEnforced, "refer (ABI 2): renames and links across directories are refused everywhere")
		}
		if abi < 3 {
			e.FS &^= ll.AccessFSTruncate
			e.NotEnforced = append(e.NotEnforced, "truncate (ABI 3): truncating files is not restricted")
		}
	}
	if r.TCPConnect != nil {
		if abi >= 4 {
			e.Net |= ll.AccessNetConnectTCP
		} else {
			e.NotEnforced = append(e.NotEnforced, "tcp-connect (ABI 4): outgoing TCP connections are not restricted")
		}
	}
	if r.TCPBind != nil {
		if abi >= 4 {
			e.Net |= ll.AccessNetBindTCP
		} else {
			e.NotEnforced = append(e.NotEnforced, "tcp-bind (ABI 4): binding TCP ports is not restricted")
		}
	}
	for _, s := range r.scopes() {
		bit, _ := scopeBit(s)
		if abi >= 6 {
			e.Scoped |= bit
		} else {
			e.NotEnforced = append(e.NotEnforced, fmt.Sprintf("scope %s (ABI 6): not restricted", s))
		}
	}
	return e
}

// Check fails when the kernel's ABI is below what r requires: the workload
// must not start then.
func Check(r Ruleset, abi int) error {
	if abi < r.RequireABI {
		return fmt.Errorf("profile %q requires Landlock ABI %d, the kernel has %d", r.Profile, r.RequireABI, abi)
	}
	return nil
}
