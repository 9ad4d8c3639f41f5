package policy

import (
	"fmt"
	"sync/atomic"
)

// Source holds a node's policy file for a long-lived front door (the shim
// lives as long as its pod). Reload replaces the policy only with one that
// parsed and validated: a broken edit never opens the gate, and ward keeps
// enforcing the last good policy until the file is fixed.
type Source struct {
	path    string
	current atomic.Pointer[Policy]
}

// NewSource loads path. A policy that does not load is an error: there is
// no last good policy to fall back on yet, and ward refuses to start.
func NewSource(path string) (*Source, error) {
	p, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	s := &Source{path: path}
	s.current.Store(p)
	return s, nil
}

// Current returns the policy in force.
func (s *Source) Current() *Policy { return s.current.Load() }

// Reload re-reads the file. On error the policy in force is unchanged.
func (s *Source) Reload() error {
	p, err := LoadFile(s.path)
	if err != nil {
		return fmt.Errorf("keeping the last good policy: %w", err)
	}
	s.current.Store(p)
	return nil
}
