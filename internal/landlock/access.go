package landlock

import (
	"fmt"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Access is a set of ward's access groups.
type Access uint8

const (
	// Read allows reading files and listing directories.
	Read Access = 1 << iota
	// Write allows writing and truncating files and creating, removing
	// and renaming entries (devices excepted: no rule ever allows mknod).
	Write
	// Exec allows executing files.
	Exec
)

// String gives the access in letters, "rwx" order: "rx", "rw", "r".
func (a Access) String() string {
	// Every combination spelled out: access strings are written for every
	// rule of every container, and a constant costs no allocation.
	switch a & (Read | Write | Exec) {
	case 0:
		return ""
	case Read:
		return "r"
	case Write:
		return "w"
	case Exec:
		return "x"
	case Read | Write:
		return "rw"
	case Read | Exec:
		return "rx"
	case Write | Exec:
		return "wx"
	}
	return "rwx"
}

// ParseAccess reads letters as String writes them, in any order.
func ParseAccess(s string) (Access, error) {
	if s == "" {
		return 0, fmt.Errorf("empty access: want letters from r, w, x")
	}
	var a Access
	for _, c := range s {
		var bit Access
		switch c {
		case 'r':
			bit = Read
		case 'w':
			bit = Write
		case 'x':
			bit = Exec
		default:
			return 0, fmt.Errorf("access %q: %q is not one of r, w, x", s, c)
		}
		if a&bit != 0 {
			return 0, fmt.Errorf("access %q: %q given twice", s, c)
		}
		a |= bit
	}
	return a, nil
}

// MarshalText writes the letters; JSON and YAML use it.
func (a Access) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads the letters; JSON and YAML use it.
func (a *Access) UnmarshalText(b []byte) error {
	v, err := ParseAccess(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Landlock filesystem rights behind each group. Directory rights apply to a
// whole hierarchy; a rule on a regular file may only carry file rights.
const (
	fsReadFile  = ll.AccessFSReadFile
	fsReadDir   = ll.AccessFSReadFile | ll.AccessFSReadDir
	fsWriteFile = ll.AccessFSWriteFile | ll.AccessFSTruncate
	fsWriteDir  = fsWriteFile | ll.AccessFSRemoveDir | ll.AccessFSRemoveFile |
		ll.AccessFSMakeDir | ll.AccessFSMakeReg | ll.AccessFSMakeSock |
		ll.AccessFSMakeFifo | ll.AccessFSMakeSym | ll.AccessFSRefer
	fsExec = ll.AccessFSExecute

	// fsHandled is every right the ruleset restricts. MakeChar and
	// MakeBlock are handled but never granted: containers have no business
	// creating device nodes.
	fsHandled = fsReadDir | fsWriteDir | fsExec | ll.AccessFSMakeChar | ll.AccessFSMakeBlock
)

// fsRights maps the access to Landlock filesystem rights for a directory
// hierarchy (dir) or a single file.
func (a Access) fsRights(dir bool) uint64 {
	var r uint64
	if a&Read != 0 {
		r |= fsReadFile
		if dir {
			r |= fsReadDir
		}
	}
	if a&Write != 0 {
		r |= fsWriteFile
		if dir {
			r |= fsWriteDir
		}
	}
	if a&Exec != 0 {
		r |= fsExec
	}
	return r
}

// Scopes a ruleset can ask for (Landlock ABI 6).
const (
	// ScopeAbstractUnixSocket refuses connections to abstract UNIX sockets
	// created outside the container's Landlock domain, such as a
	// containerd-shim socket reachable with host networking
	// (CVE-2020-15257).
	ScopeAbstractUnixSocket = "abstract-unix-socket"
	// ScopeSignal refuses signals to processes outside the domain.
	ScopeSignal = "signal"
)

func scopeBit(name string) (uint64, bool) {
	switch name {
	case ScopeAbstractUnixSocket:
		return ll.ScopeAbstractUnixSocket, true
	case ScopeSignal:
		return ll.ScopeSignal, true
	}
	return 0, false
}
