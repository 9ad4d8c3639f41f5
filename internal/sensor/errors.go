package sensor

import (
	"errors"
	"fmt"
)

// ErrNotSupported is what every *NotSupportedError matches with errors.Is.
var ErrNotSupported = errors.New("not supported")

// NotSupportedError says which kernel feature the sensor lacks.
type NotSupportedError struct {
	// Feature names it, e.g. "BPF ring buffers".
	Feature string
	// MinimumVersion is the first Linux release with it, "" when it is a
	// configuration or permission that is missing.
	MinimumVersion string
	// Err is the kernel's answer.
	Err error
}

func (e *NotSupportedError) Error() string {
	s := e.Feature + " not supported"
	if e.MinimumVersion != "" {
		s += fmt.Sprintf(" (requires Linux %s or later)", e.MinimumVersion)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

func (e *NotSupportedError) Unwrap() error { return e.Err }
