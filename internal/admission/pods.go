package admission

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ward-runtime/ward/internal/recordfile"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// PodStore keeps one record per pod, shared by every front door of a node:
// the shim, ward-runtime under CRI-O or containerd's BinaryName, and the
// Kata route at `shim start`. A pod's app containers are judged with the
// record its sandbox left, whichever door created either.
type PodStore struct{ Dir string }

// PodRecord is what a sandbox's decision leaves for its pod.
type PodRecord struct {
	SandboxID string         `json:"sandboxID"`
	Action    policy.Action  `json:"action"`
	Backend   policy.Backend `json:"backend"`
	// Findings are the sandbox's pod-level findings, which its app
	// containers inherit.
	Findings []PodFinding `json:"findings,omitempty"`
	// Bundle is the sandbox's bundle directory: once it is gone, so is the
	// pod (Prune).
	Bundle string `json:"bundle,omitempty"`
	// Door is the front door that decided the sandbox.
	Door Door `json:"door,omitempty"`
	// PID is the running sandbox's process, whose namespaces the pod's
	// app containers join; 0 until the front door learns it.
	PID int `json:"pid,omitempty"`
	// Userns is the pod's user namespace block.
	Userns *PodUserns `json:"userns,omitempty"`
}

// PodFinding is a stored pod-level finding.
type PodFinding struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	Detail string `json:"detail,omitempty"`
	Waived string `json:"waived,omitempty"`
}

// PodUserns is a pod's user namespace block.
type PodUserns struct {
	Owner string       `json:"owner"`
	Block userns.Range `json:"block"`
}

func newPodRecord(pc *policy.PodContext, bundleDir string, door Door, l *Lease) *PodRecord {
	r := &PodRecord{SandboxID: pc.SandboxID, Action: pc.Action, Backend: pc.Backend, Bundle: bundleDir, Door: door}
	for _, f := range pc.Findings {
		r.Findings = append(r.Findings, PodFinding{ID: f.Check.ID, Path: f.Path, Detail: f.Detail, Waived: f.Waived})
	}
	if l != nil && l.Join == "" {
		r.Userns = &PodUserns{Owner: l.Owner, Block: l.Block}
	}
	return r
}

// context rebuilds the pod's context for its app containers. A stored
// finding the catalog no longer has (a record from another release) is an
// error: judging the container without it could loosen the pod's decision.
func (r *PodRecord) context(e *policy.Evaluator) (*policy.PodContext, error) {
	pc := &policy.PodContext{SandboxID: r.SandboxID, Action: r.Action, Backend: r.Backend}
	for _, f := range r.Findings {
		c := e.Check(f.ID)
		if c == nil {
			return nil, fmt.Errorf("pod record of sandbox %s names finding %q, which this ward does not know", r.SandboxID, f.ID)
		}
		pc.Findings = append(pc.Findings, policy.Finding{Check: c, Path: f.Path, Detail: f.Detail, Waived: f.Waived})
	}
	return pc, nil
}

func (s PodStore) dir() recordfile.Dir {
	return recordfile.Dir{Path: s.Dir, Perm: 0o640, What: "pod record", Max: 1 << 16}
}

// Write saves r, replacing the pod's earlier record.
func (s PodStore) Write(r *PodRecord) error { return s.dir().Write(r.SandboxID, r) }

// ErrNoPod means the store has no record of the pod.
var ErrNoPod = recordfile.ErrNotFound

// Read loads the record of the pod whose sandbox is id.
func (s PodStore) Read(id string) (*PodRecord, error) {
	var r PodRecord
	if err := s.dir().Read(id, &r); err != nil {
		return nil, err
	}
	if r.SandboxID != id {
		return nil, fmt.Errorf("pod record of %s is for sandbox %q", id, r.SandboxID)
	}
	return &r, nil
}

// SetSandboxPID records the running sandbox's pid, whose namespaces the
// pod's app containers join.
func (s PodStore) SetSandboxPID(id string, pid int) error {
	r, err := s.Read(id)
	if err != nil {
		return err
	}
	r.PID = pid
	return s.Write(r)
}

// sandboxPID is the pod's sandbox process: from the record, else from the
// front door (ward-runtime reads it from the runtime's state).
func (r *PodRecord) sandboxPID(lookup func(string) (int, error)) (int, error) {
	if r.PID > 0 || lookup == nil {
		return r.PID, nil
	}
	pid, err := lookup(r.SandboxID)
	if err != nil {
		return 0, fmt.Errorf("finding the pod sandbox's process: %w", err)
	}
	return pid, nil
}

// Remove deletes the pod's record; a missing one is not an error.
func (s PodStore) Remove(id string) error { return s.dir().Remove(id) }

// Prune removes the records of pods whose sandbox bundle is gone (the
// container manager removes it with the pod): a Kata pod's removal, say,
// never reaches ward. Records that name no bundle are kept: without it,
// ward cannot tell that their pod is gone.
func (s PodStore) Prune() {
	ids, _ := s.dir().IDs()
	for _, id := range ids {
		r, err := s.Read(id)
		if err != nil || r.Bundle == "" || !filepath.IsAbs(r.Bundle) {
			continue
		}
		if _, err := os.Stat(r.Bundle); errors.Is(err, fs.ErrNotExist) {
			s.Remove(id)
		}
	}
}
