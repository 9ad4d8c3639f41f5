// Package incident collects and keeps incident bundles: what ward knew and
// what it could see of a container at the moment it answered an escape
// attempt, collected while the container is frozen (package freezer) so
// that its processes, open files and mounts cannot change under the
// collection.
//
// A bundle is a directory <stateDir>/incidents/<id>/ holding
//
//	manifest.json      what, when, which container, and the sha256 of every other file
//	SHA256SUMS         the same digests for `sha256sum -c`
//	spec.json          the spec the runtime ran (ward's hardened rewrite)
//	spec.orig.json     the spec as the container manager wrote it
//	decision.json      ward's decision-log entry for the container, byte for byte
//	processes.json     every process of the container: ids, parent, command line,
//	                   executable, cwd, root, credentials, capabilities, seccomp, tree
//	fds.json           each process's open files (/proc/<pid>/fd links)
//	namespaces.json    each process's namespaces (/proc/<pid>/ns links)
//	mountinfo.txt      the init process's mount table (mountinfo-<pid>.txt for a
//	                   process in another mount namespace)
//	cgroup.txt         the init process's cgroups and the freezer's state
//	alerts.jsonl       the container's recent alerts, as they were raised
//
// A bundle is written to a temporary directory beside the others, each file
// synced, and renamed into place in one step: a reader sees a whole bundle
// or none. Whatever could not be read (a process gone, a file missing) is
// said in the manifest's notes rather than failing the collection: a
// partial record of an attack is worth more than none.
package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/version"
)

// ManifestName is the manifest's file name in a bundle.
const ManifestName = "manifest.json"

// SumsName is the digests in sha256sum's format.
const SumsName = "SHA256SUMS"

// maxSpec bounds a spec copied into a bundle (bundle.Load's own limit is
// smaller; a larger file is not a spec a runtime ran).
const maxSpec = 16 << 20

// Input is what a collection is about.
type Input struct {
	// ContainerID is the runtime's container ID.
	ContainerID string
	// Bundle is the container's bundle directory: config.json (ward's
	// rewrite) and config.json.orig (the caller's).
	Bundle string
	// Pid is the container's init process (the OCI state's pid).
	Pid int
	// Cgroup is the container's cgroup (freezer.Locate): its processes are
	// the ones recorded and its freezer state is noted. nil records the
	// init process and its descendants.
	Cgroup *freezer.Cgroup
	// Trigger is why the incident was opened.
	Trigger Trigger
	// DecisionLog is the decision log to take the container's entry from
	// ("" when there is none).
	DecisionLog string
	// Alerts are the container's recent alerts, one JSON document each,
	// oldest first.
	Alerts []json.RawMessage
	// Time is when the incident happened; zero means now.
	Time time.Time
}

// Trigger is what opened an incident.
type Trigger struct {
	// Rule is the alert rule that fired.
	Rule string `json:"rule,omitempty"`
	// Response is what ward did: "freeze", "kill", ...
	Response string `json:"response,omitempty"`
	// Output is the alert's sentence.
	Output string `json:"output,omitempty"`
}

// Manifest describes a bundle.
type Manifest struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	WardVersion string    `json:"wardVersion"`
	Container   Container `json:"container"`
	// Workload is the pod and image the decision-log entry names.
	Workload *bundle.Workload `json:"workload,omitempty"`
	Trigger  Trigger          `json:"trigger"`
	// Files are every other file of the bundle but SHA256SUMS, sorted.
	Files []File `json:"files"`
	// Notes say what could not be collected, and why.
	Notes []string `json:"notes,omitempty"`
}

// Container is the container as it was found.
type Container struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle,omitempty"`
	Pid    int    `json:"pid"`
	// Cgroup is "v1 /path" or "v2 /path".
	Cgroup string `json:"cgroup,omitempty"`
	// Freezer is the cgroup's freezer state while collecting: FROZEN
	// means what was recorded could not change meanwhile.
	Freezer freezer.State `json:"freezer,omitempty"`
	// Processes is how many were recorded.
	Processes int `json:"processes"`
}

// File is one file of a bundle.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Store is a directory of bundles, <stateDir>/incidents.
type Store struct {
	Dir string
}

// NewStore is the store under a state directory (nodeconfig.Config's
// StateDir).
func NewStore(stateDir string) Store { return Store{Dir: filepath.Join(stateDir, "incidents")} }

// validID reports whether id may be an incident ID, which becomes a
// directory name: 1 to 128 of [A-Za-z0-9._-], starting with a letter or
// digit. A loop, not a regular expression: the bounded repetition compiled
// at every start of every ward binary that links this package (about 1700
// allocations, half of ward-runtime's package initialisation).
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ErrNotFound means there is no incident with the ID.
var ErrNotFound = errors.New("no such incident")

func (s Store) path(id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("invalid incident id %q", id)
	}
	return filepath.Join(s.Dir, id), nil
}

// newID is the incident's ID: its time (UTC, to the nanosecond, so IDs
// sort by time) and the container's short ID.
func newID(t time.Time, containerID string) string {
	short := containerID
	if len(short) > 12 {
		short = short[:12]
	}
	id := t.UTC().Format("20060102T150405.000000000Z")
	if short != "" && validID(short) {
		id += "-" + short
	}
	return id
}

// Collect writes a bundle for in and returns its manifest. Call it while
// the container is frozen.
func (s Store) Collect(ctx context.Context, in Input) (*Manifest, error) {
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	m := &Manifest{
		ID: newID(in.Time, in.ContainerID), Time: in.Time.UTC(), WardVersion: version.Version(),
		Container: Container{ID: in.ContainerID, Bundle: in.Bundle, Pid: in.Pid},
		Trigger:   in.Trigger,
	}
	final, err := s.path(m.ID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating incident directory: %w", err)
	}
	tmp, err := os.MkdirTemp(s.Dir, ".collect-")
	if err != nil {
		return nil, fmt.Errorf("creating incident bundle: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	w := &writer{dir: tmp, m: m}
	w.collect(ctx, in)
	if w.err != nil {
		return nil, fmt.Errorf("writing incident bundle: %w", w.err)
	}
	if err := w.finish(); err != nil {
		return nil, fmt.Errorf("writing incident bundle: %w", err)
	}
	// RENAME_NOREPLACE: two incidents never share a directory, and an
	// existing one is never replaced.
	if err := renameNoReplace(tmp, final); err != nil {
		return nil, fmt.Errorf("writing incident bundle %s: %w", final, err)
	}
	done = true
	if err := syncDir(s.Dir); err != nil {
		return nil, fmt.Errorf("writing incident bundle %s: %w", final, err)
	}
	return m, nil
}

// collect gathers each part; read failures become notes, write failures
// w.err.
func (w *writer) collect(ctx context.Context, in Input) {
	if in.Bundle != "" {
		cfg := filepath.Join(in.Bundle, "config.json")
		w.copyFile("spec.json", cfg)
		w.copyFile("spec.orig.json", cfg+bundle.OrigSuffix)
	} else {
		w.note("no bundle directory given: specs not collected")
	}
	w.decision(in)
	if in.Cgroup != nil {
		w.m.Container.Cgroup = fmt.Sprintf("v%d %s", in.Cgroup.Version, in.Cgroup.Path)
		st, err := in.Cgroup.State()
		if err != nil {
			w.note("freezer state: %v", err)
		}
		w.m.Container.Freezer = st
		if st != freezer.Frozen {
			w.note("the container was not frozen while collecting (%s): processes may have changed meanwhile", orUnknown(string(st)))
		}
	} else {
		w.note("no cgroup given: recorded the init process and its descendants, not frozen")
	}
	procs := w.processes(ctx, in)
	w.m.Container.Processes = len(procs)
	w.procFiles(in.Pid, procs)
	var alerts []byte
	for _, a := range in.Alerts {
		alerts = append(alerts, a...)
		alerts = append(alerts, '\n')
	}
	w.file("alerts.jsonl", alerts)
}

// decision copies the container's decision-log entry and takes the
// workload from it.
func (w *writer) decision(in Input) {
	if in.DecisionLog == "" {
		w.note("no decision log: decision not collected")
		return
	}
	line, err := decisionlog.Last(in.DecisionLog, in.ContainerID)
	if err != nil {
		w.note("decision: %v", err)
		return
	}
	w.file("decision.json", append(line, '\n'))
	var e struct {
		Workload *bundle.Workload `json:"workload"`
	}
	if json.Unmarshal(line, &e) == nil {
		w.m.Workload = e.Workload
	}
}

func (w *writer) copyFile(name, src string) {
	data, err := bounded.ReadFile(src, maxSpec)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			w.note("%s: %s does not exist", name, src)
		} else {
			w.note("%s: %v", name, err)
		}
		return
	}
	w.file(name, data)
}

func orUnknown(s string) string {
	if s == "" {
		return "state unknown"
	}
	return s
}

// sortedIDs lists the store's incident IDs, oldest first.
func (s Store) sortedIDs() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing incidents: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && validID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// List reads every bundle's manifest, oldest first. A bundle whose
// manifest does not read is listed with its ID and a note saying why.
func (s Store) List() ([]Manifest, error) {
	ids, err := s.sortedIDs()
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, 0, len(ids))
	for _, id := range ids {
		m, err := s.Manifest(id)
		if err != nil {
			out = append(out, Manifest{ID: id, Notes: []string{err.Error()}})
			continue
		}
		out = append(out, *m)
	}
	return out, nil
}

// Manifest reads one bundle's manifest.
func (s Store) Manifest(id string) (*Manifest, error) {
	dir, err := s.path(id)
	if err != nil {
		return nil, err
	}
	data, err := bounded.ReadFile(filepath.Join(dir, ManifestName), 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
			return nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: reading manifest: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("incident %s: decoding manifest: %w", id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("incident %s: its manifest says id %q", id, m.ID)
	}
	return &m, nil
}

// Resolve finds an incident by its ID or a unique prefix of it (IDs are
// long; `ward incident show 20261202T07` is enough when only one matches).
func (s Store) Resolve(prefix string) (string, error) {
	ids, err := s.sortedIDs()
	if err != nil {
		return "", err
	}
	var match []string
	for _, id := range ids {
		if id == prefix {
			return id, nil
		}
		if strings.HasPrefix(id, prefix) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("incident %q: %w", prefix, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("incident %q is ambiguous: %d incidents start with it (%s, ...)", prefix, len(match), match[0])
}
