//go:build !linux

package profiles

import (
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/nodeonly"
)

// errNotLinux: moby's profile generator, and seccomp itself, exist only on
// Linux. It is a *nodeonly.Error, so that a judge that only previews
// verdicts can stand SeccompPreview in (judge.Options.Preview).
var errNotLinux = nodeonly.New("generating ward's seccomp profile")

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
