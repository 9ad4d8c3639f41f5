package wardruntime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/supervisor"
)

// reapAfter is the node supervisor's reaper (supervise.go), for a
// foreground run.
// ward hands the process over to the backend, which deletes the container
// when it exits, but ward is gone by then and its record and
// user-namespace block (with the idmapped root filesystem) would stay
// until a `list` pruned them. So ward hands the node's supervisor a pidfd of its own
// process, which after the exec is the backend's; when that process has
// ended, the supervisor forgets the container, if the backend no longer knows
// it. It is off the path the caller waits on, and the caller keeps runc's
// semantics exactly: same pid, signals, exit status. created (the record's
// creation time in nanoseconds) tells the record apart from a later
// container that reused the ID.
//
// It reports whether the container is done with: false when the backend
// still has it (a backend killed before its own
// cleanup, whose container may still run), and then the supervisor goes on
// supervising until the record is deleted.
func (c *ctx) reapAfter(id string, created int64, pidfd *os.File) (bool, error) {
	defer pidfd.Close()
	// The wait holds no thread (waitPidfd); the work after it stays on
	// this goroutine's thread, at idle priority: a container start must
	// never wait for a cleanup. Locked first, so that the runtime's
	// threads are not started from an idle one.
	if err := waitPidfd(pidfd); err != nil {
		return true, fmt.Errorf("%s %s: %w", nodeCommand, id, err)
	}
	goruntime.LockOSThread()
	if err := idlePriority(0); err != nil {
		c.log.debugf("ward-runtime: %s: idle priority: %v", nodeCommand, err)
	}
	t, rec, err := c.targetOf(id)
	if err != nil || rec == nil || rec.Created.UnixNano() != created {
		// Already deleted (or replaced) by someone else.
		return true, err
	}
	if c.knows(t, id) {
		// The container is still there for a delete.
		return false, nil
	}
	return true, c.forget(rec)
}

// knows reports whether the backend still has container id. runc (and
// crun) keep one directory per container under their root and remove it at
// delete, so a stat answers without starting the backend, work that would
// otherwise land beside the next container's start. runsc is asked (the
// reaper's stdio is /dev/null: its state document goes nowhere).
func (c *ctx) knows(t target, id string) bool {
	if !t.runsc() {
		_, err := os.Lstat(filepath.Join(t.root, id))
		return !errors.Is(err, fs.ErrNotExist)
	}
	return c.runBackend(t, "state", []string{id}) == nil
}

// forget gives back what ward holds for a container its backend no longer
// has: the user-namespace block and idmapped root filesystem, the record,
// and runsc's pinned network namespace. The block goes first: if its
// release fails, the record stays for a retry.
func (c *ctx) forget(r *Record) error {
	if err := admission.ReleaseLease(c.cfg.Userns, r.Userns); err != nil {
		return err
	}
	if r.Sandbox {
		if err := (admission.PodStore{Dir: c.cfg.PodDir()}).Remove(r.ID); err != nil {
			return err
		}
	}
	if err := c.records().remove(r.ID); err != nil {
		return err
	}
	if r.Supervisor != "" && filepath.Dir(r.Supervisor) == supervisor.DefaultDir {
		// Only a path ward made: the record is root's, but a name
		// elsewhere is never ward's to remove.
		os.Remove(r.Supervisor)
	}
	if r.target().runsc() {
		c.cleanupRunscRoot(r.Root)
	}
	return nil
}
