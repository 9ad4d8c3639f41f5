package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Registry attributes listeners to the containers a front door runs (a
// shim's pod): a connecting process is a container's when it is the
// container's first process, or shares its mount namespace (an exec
// session). Every container has a mount namespace of its own.
type Registry struct {
	mu   sync.Mutex
	byID map[string]entry
}

type entry struct {
	c   Container
	pid int
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byID: make(map[string]entry)} }

// Add records a container and its first process (once the runtime
// created it, before it starts).
func (r *Registry) Add(c Container, pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[c.ID] = entry{c: c, pid: pid}
}

// Remove forgets a container.
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, id)
}

// Resolve is Options.Resolve.
func (r *Registry) Resolve(pid int) (Container, error) {
	r.mu.Lock()
	entries := make([]entry, 0, len(r.byID))
	for _, e := range r.byID {
		if e.pid == pid {
			r.mu.Unlock()
			return e.c, nil
		}
		entries = append(entries, e)
	}
	r.mu.Unlock()
	ns, err := mountNS(pid)
	if err != nil {
		return Container{}, err
	}
	for _, e := range entries {
		if other, err := mountNS(e.pid); err == nil && other == ns {
			return e.c, nil
		}
	}
	return Container{}, fmt.Errorf("pid %d is in none of this supervisor's containers", pid)
}

// mountNS identifies a process's mount namespace.
func mountNS(pid int) ([2]uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/mnt", &st); err != nil {
		return [2]uint64{}, fmt.Errorf("reading the mount namespace of pid %d: %w", pid, os.NewSyscallError("stat", err))
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}
