//go:build !linux

package profiles

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// errNotLinux is returned because moby's profile generator, and seccomp
// itself, exist only on Linux.
var errNotLinux = errors.New("seccomp profiles can only be generated on linux")

// NewSeccompGenerator fails: seccomp profiles can only be generated on Linux.
func NewSeccompGenerator([]string) (*SeccompGenerator, error) {
	return nil, errNotLinux
}

func (g *SeccompGenerator) generate(uint64) (*specs.LinuxSeccomp, error) {
	return nil, errNotLinux
}

// SeccompInputsDigest fails: seccomp profiles can only be generated on Linux.
func SeccompInputsDigest() (string, error) {
	return "", errNotLinux
}
