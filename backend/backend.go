// Package backend says how a decided container runs: which OCI runtime
// binary, with which flags, or which containerd shim. It resolves binaries
// up front so that a missing sandbox runtime fails closed, with a message
// naming the binary and the rule that chose it, instead of the container
// silently running somewhere weaker.
package backend

import (
	"fmt"
	"os/exec"
	"slices"

	"github.com/ward-runtime/ward/policy"
)

// Config is the node's backend configuration.
type Config struct {
	// Runc is the OCI runtime for hardened containers (runc or crun).
	Runc string `yaml:"runc" json:"runc"`
	// Runsc is gVisor's runtime binary.
	Runsc string `yaml:"runsc" json:"runsc"`
	// RunscFlags are global flags given to runsc before the subcommand,
	// e.g. ["--platform=systrap"].
	RunscFlags []string `yaml:"runscFlags" json:"runscFlags"`
	// KataShim is Kata Containers' containerd shim.
	KataShim string `yaml:"kataShim" json:"kataShim"`
}

// Defaults returns the configuration ward uses when none is given.
func Defaults() Config {
	return Config{
		Runc:       "runc",
		Runsc:      "runsc",
		RunscFlags: []string{"--platform=systrap"},
		KataShim:   "containerd-shim-kata-v2",
	}
}

// Runtime is a resolved backend.
type Runtime struct {
	Backend policy.Backend
	// Path is the absolute path of the binary (runtime or shim).
	Path string
	// Flags go before the subcommand.
	Flags []string
	// Shim is true when Path is a containerd shim rather than an OCI runtime.
	Shim bool
}

// MissingError reports a backend binary that is not installed.
type MissingError struct {
	Backend policy.Backend
	Binary  string
	Rule    string
	Err     error
}

func (e *MissingError) Error() string {
	rule := "the default action"
	if e.Rule != "" {
		rule = "policy rule " + e.Rule
	}
	return fmt.Sprintf("%s chose backend %s, but its binary %q is not installed (%v); refusing to run the container elsewhere",
		rule, e.Backend, e.Binary, e.Err)
}

func (e *MissingError) Unwrap() error { return e.Err }

// Resolve finds the binary for b. rule names the policy rule that chose b,
// for the error message.
func (c Config) Resolve(b policy.Backend, rule string) (Runtime, error) {
	var rt Runtime
	switch b {
	case policy.Runc, "":
		rt = Runtime{Backend: policy.Runc, Path: c.Runc}
	case policy.GVisor:
		rt = Runtime{Backend: policy.GVisor, Path: c.Runsc, Flags: slices.Clone(c.RunscFlags)}
	case policy.Kata:
		rt = Runtime{Backend: policy.Kata, Path: c.KataShim, Shim: true}
	default:
		return Runtime{}, fmt.Errorf("unknown backend %q", b)
	}
	path, err := exec.LookPath(rt.Path)
	if err != nil {
		return Runtime{}, &MissingError{Backend: rt.Backend, Binary: rt.Path, Rule: rule, Err: err}
	}
	rt.Path = path
	return rt, nil
}
