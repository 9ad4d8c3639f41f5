package freezer

import (
	"errors"
	"fmt"
)

// ErrNotSupported is what every *NotSupportedError matches with errors.Is.
var ErrNotSupported = errors.New("not supported")

// NotSupportedError says which kernel feature is missing and, where one
// exists, the first kernel release that has it.
type NotSupportedError struct {
	// Feature names the missing feature, e.g. "cgroup v2 freezer".
	Feature string
	// MinimumVersion is the first Linux release with the feature ("" when
	// it is a configuration, not a version, that is missing).
	MinimumVersion string
}

func (e *NotSupportedError) Error() string {
	if e.MinimumVersion == "" {
		return fmt.Sprintf("%s not supported", e.Feature)
	}
	return fmt.Sprintf("%s not supported (requires Linux %s or later)", e.Feature, e.MinimumVersion)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }
