package wardruntime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// usernsOwner names a container's block in the allocator: containers of
// different --root directories may share an ID.
func (c *ctx) usernsOwner(id string) string { return "ward-runtime:" + c.root() + ":" + id }

// runtimeRootfs makes a container's root filesystem reachable through
// idmapped mounts and points root.path at it, or, where the filesystem
// refuses and the policy says chown, changes the owners in place.
type runtimeRootfs struct {
	c      *ctx
	policy *policy.Policy
}

func (m runtimeRootfs) MapRootfs(b *bundle.Bundle, l *admission.Lease, v *judge.Verdict) error {
	s := b.Spec
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("spec has no root.path")
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(b.Dir, root)
	}
	ns, err := userns.NewNamespace(l.Block)
	if err != nil {
		return err
	}
	defer ns.Close()
	// A lease that joins another's namespace (a pod's member) shares its
	// owner with that one, but not its root filesystem.
	key := l.Owner
	if l.Join != "" {
		key += ":" + b.Dir
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(m.c.cfg.Userns.StateDir, "rootfs", hex.EncodeToString(sum[:12]))
	rf, err := userns.IdmapRootfs(root, dir, ns, l.Block)
	switch {
	case err == nil:
		l.Rootfs = rf
		s.Root.Path = rf.Path
		v.Changes = append(v.Changes, harden.Change{Step: policy.StepUserns, Path: "root.path",
			Detail: "root filesystem reached through idmapped mounts at " + rf.Path + " (" + rf.How + ")"})
		return nil
	case errors.Is(err, userns.ErrNotIdmappable) && m.policy.Userns.OnUnidmappable == policy.UnidmappableChown &&
		slices.ContainsFunc(v.Findings, func(f policy.Finding) bool { return f.Check.ID == policy.IDRootfsUnproven }):
		// chown changes files for good: only in a root ward has proved a
		// container's (docs/threat-model.md).
		return fmt.Errorf("%w; policy userns.onUnidmappable is chown, but root.path %s is not proved a container root filesystem (rootfs-unproven): refusing to chown it", err, root)
	case errors.Is(err, userns.ErrNotIdmappable) && m.policy.Userns.OnUnidmappable == policy.UnidmappableChown:
		n, cerr := userns.ChownTree(root, l.Block)
		if cerr != nil {
			return cerr
		}
		l.Chown = n
		msg := fmt.Sprintf("root filesystem %s cannot be idmapped (%v); policy userns.onUnidmappable is chown: changed the owner of %d files to the mapped IDs", root, err, n)
		m.c.log.warn("ward-runtime: " + msg)
		v.Notes = append(v.Notes, msg)
		return nil
	case errors.Is(err, userns.ErrNotIdmappable):
		return fmt.Errorf("%w; policy userns.onUnidmappable is reject (set chown to change owners instead, or exempt the workload from %q)", err, policy.StepUserns)
	}
	return err
}

// initPID finds a container's first process: ward-runtime is gone once
// the container runs, so the pid is read from the runtime's state (runc's
// state.json under its root). A pod sandbox's, for its app containers'
// user namespace; a supervised container's, for its supervisor.
func (c *ctx) initPID(id string) (int, error) {
	t, rec, err := c.targetOf(id)
	if err != nil || rec == nil || t.runsc() {
		return 0, err
	}
	return statePID(t, id)
}

// initPIDOf is initPID for the node's supervisor, which reads the pid when
// the container's ward-init connects, on the container's start path: the
// backend is found from ward's record now, when the container is handed
// over, so that the read then is runc's state alone. A record that cannot
// be read now (or is not there yet) is read then, as initPID does.
func (c *ctx) initPIDOf(id string) func() (int, error) {
	t, rec, err := c.targetOf(id)
	switch {
	case err != nil || rec == nil:
		return func() (int, error) { return c.initPID(id) }
	case t.runsc():
		return func() (int, error) { return 0, nil }
	}
	return func() (int, error) { return statePID(t, id) }
}

// statePID reads container id's first process from runc's state under
// t's root; 0 when runc has no such container.
func statePID(t target, id string) (int, error) {
	data, err := bounded.ReadFile(filepath.Join(t.root, id, "state.json"), 1<<22)
	if errors.Is(err, fs.ErrNotExist) {
		// The container is not running under this root: there is no
		// process whose namespaces to compare (an app container cannot
		// join them either), and the checks decide without them.
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the state of container %s: %w", id, err)
	}
	var st struct {
		Pid int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return 0, fmt.Errorf("reading the state of container %s: %w", id, err)
	}
	return st.Pid, nil
}
