// Package nodeonly is ward's answer when something only a Linux node can
// do is asked for on another operating system: `ward scan`, `ward
// explain` and the policy exports run in CI and on developers' machines,
// but what reads or changes a node (its kernel, /proc, cgroups, bpffs,
// ward's state) has a Linux implementation only. Off Linux those
// operations fail with an *Error, never with a weaker stand-in, and
// callers branch on errors.Is(err, ErrNotSupported).
package nodeonly

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrNotSupported is what every *Error is (errors.Is); it is also
// errors.ErrUnsupported.
var ErrNotSupported = fmt.Errorf("needs a Linux node: %w", errors.ErrUnsupported)

// Error says which operation needs Linux and what this system is.
type Error struct {
	// What is the operation, as a user would name it ("ward doctor",
	// "reading the eBPF sensor's pins").
	What string
	// OS is runtime.GOOS.
	OS string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s needs Linux (a ward node); this is %s", e.What, e.OS)
}

// Is makes errors.Is(err, ErrNotSupported) and errors.Is(err,
// errors.ErrUnsupported) hold.
func (e *Error) Is(target error) bool {
	return target == ErrNotSupported || target == errors.ErrUnsupported
}

// New returns the error for what on this operating system.
func New(what string) error { return &Error{What: what, OS: runtime.GOOS} }
