package wardruntime

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/recordfile"
	"github.com/ward-runtime/ward/policy"
)

// Record is what ward remembers about a container between invocations: the
// backend that runs it (so that start, kill, exec... reach the same one)
// and the decision (so that exec sessions get the container's hardening).
type Record struct {
	ID string `json:"id"`
	// Backend is the chosen backend; Runtime, Flags and Root are how it was
	// invoked, kept so that a configuration change never sends a later
	// subcommand to a runtime that does not know the container.
	Backend policy.Backend `json:"backend"`
	Runtime string         `json:"runtime"`
	Flags   []string       `json:"flags,omitempty"`
	Root    string         `json:"root"`
	// Dialect and Unsupported say how the backend's command line differs
	// from runc's (backend.Spec); records of earlier releases lack them.
	Dialect     backend.Dialect `json:"dialect,omitempty"`
	Unsupported []string        `json:"unsupported,omitempty"`
	Bundle      string          `json:"bundle"`
	// Sandbox is true for a pod's sandbox, whose pod record goes with it.
	Sandbox bool `json:"sandbox,omitempty"`
	// Decision is the part of the container's decision exec needs.
	Decision RecordDecision `json:"decision"`
	// Report is the container's decision as the log has it, for the log
	// entries of its exec sessions; records of earlier releases lack it.
	Report  *judge.Report `json:"report,omitempty"`
	Created time.Time     `json:"created"`
	// Userns is the container's user-namespace lease (block and idmapped
	// root filesystem), given back at delete; nil without one.
	Userns *admission.Lease `json:"userns,omitempty"`
	// Supervisor is the container's seccomp supervisor socket, removed
	// when the container is forgotten: a supervisor that was killed cannot
	// remove it itself, and its name is random (a name derived from the ID
	// could be unlinked by the previous container's supervisor as it
	// finishes).
	Supervisor string `json:"supervisor,omitempty"`
	// Manager is the spec's io.container.manager annotation ("libpod" for
	// Podman), which says whose copies into the running container come
	// through ward's overlay (exec's adoptHostRootWrites).
	Manager string `json:"manager,omitempty"`
}

// annotationManager names the manager that wrote the spec; Podman sets
// it to podmanManager (Docker sets nothing).
const (
	annotationManager = "io.container.manager"
	podmanManager     = "libpod"
)

// target is how the record's backend is invoked.
func (r *Record) target() target {
	t := target{backend: r.Backend, path: r.Runtime, flags: r.Flags, root: r.Root, dialect: r.Dialect, unsupported: r.Unsupported}
	if t.dialect == "" {
		// A record of an earlier release: the built-in backend of its name.
		s := backend.Builtin()[r.Backend]
		t.dialect, t.unsupported = s.Dialect, s.Unsupported
	}
	return t
}

// report is the container's decision for an exec session's log entry.
func (r *Record) report() judge.Report {
	if r.Report != nil {
		return *r.Report
	}
	d := r.Decision
	return judge.Report{Action: d.Action, Backend: d.Backend, Audit: d.Audit, Rule: d.Rule, Skipped: d.Skip,
		Reason: "exec session in a container ward decided", Findings: []judge.ReportFinding{}}
}

// RecordDecision is the stored part of a policy.Decision.
type RecordDecision struct {
	Action  policy.Action  `json:"action"`
	Backend policy.Backend `json:"backend"`
	Rule    string         `json:"rule,omitempty"`
	Audit   bool           `json:"audit,omitempty"`
	Skip    []string       `json:"skip,omitempty"`
}

func recordDecision(d *policy.Decision) RecordDecision {
	return RecordDecision{Action: d.Action, Backend: d.Backend, Rule: d.Rule, Audit: d.Audit, Skip: d.Skip}
}

// maxRecordSize bounds a record file; real ones are a few hundred bytes.
const maxRecordSize = 64 << 10

// validID is runc's rule for container IDs, ^[\w+\-.]+$ (ASCII letters,
// digits, _ + - and .). ward enforces it before the ID becomes part of a
// path. A loop, not a regexp: compiling one costs every start of a process
// that runs once per container.
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+-.", c) >= 0) {
			return false
		}
	}
	return id != ""
}

func checkID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 || !validID(id) {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

// store keeps records as <dir>/<id>.json (recordfile), readable by root
// only.
type store struct{ dir string }

func (s store) files() recordfile.Dir {
	return recordfile.Dir{Path: s.dir, Perm: 0o600, What: "state record", Max: maxRecordSize}
}

func (s store) path(id string) string { return filepath.Join(s.dir, id+".json") }

// save writes r atomically. The state root is a tmpfs (/run), and a record
// is worthless after a reboot anyway.
func (s store) save(r *Record) error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	return s.files().Write(r.ID, r)
}

// errNoRecord means ward has no record of the container.
var errNoRecord = recordfile.ErrNotFound

// load reads id's record.
func (s store) load(id string) (*Record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	var r Record
	if err := s.files().Read(id, &r); err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("state record %s is for container %q", s.path(id), r.ID)
	}
	return &r, nil
}

// remove deletes id's record; a missing record is not an error.
func (s store) remove(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	return s.files().Remove(id)
}

// all returns every record, skipping files that are not records.
func (s store) all() ([]*Record, error) {
	ids, err := s.files().IDs()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		r, err := s.load(id)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}
