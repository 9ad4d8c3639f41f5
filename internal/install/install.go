// Package install puts ward on a node and takes it off again: binaries,
// ward's configuration and default policy, and a containerd drop-in that
// registers ward's runtime handlers.
//
// Every change is planned first, so --dry-run prints exactly what Apply
// would do. Apply records each file it wrote, with its digest and any
// backup, in a manifest; Uninstall reverts exactly those files and nothing
// else, restoring backups. A file ward did not write is never replaced
// without a backup, and a file ward wrote but an operator has since edited
// is left alone on uninstall (and said so).
package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ward-runtime/ward/internal/atomicfile"
)

// File is one file install manages.
type File struct {
	// Path is the absolute path on the node (below Root when set).
	Path string
	Data []byte
	Mode os.FileMode
	// Keep leaves an existing file alone even if it differs: an operator's
	// policy is theirs once written.
	Keep bool
}

// Op is what a plan does to one file.
type Op string

const (
	Create  Op = "create"
	Replace Op = "replace" // ward's own earlier version
	Backup  Op = "backup-and-replace"
	Skip    Op = "unchanged"
	Kept    Op = "kept" // exists, differs, and is the operator's (File.Keep)
	Remove  Op = "remove"
	Restore Op = "restore-backup"
	Leave   Op = "leave-modified"
)

// Change is one planned or applied step.
type Change struct {
	Op     Op     `json:"op"`
	Path   string `json:"path"`
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	if c.Detail == "" {
		return fmt.Sprintf("%-18s %s", c.Op, c.Path)
	}
	return fmt.Sprintf("%-18s %s (%s)", c.Op, c.Path, c.Detail)
}

// ManifestPath is where the record of an installation lives.
const ManifestPath = "/var/lib/ward/install.json"

// manifest records what Apply wrote.
type manifest struct {
	Version int             `json:"version"`
	Files   []manifestEntry `json:"files"`
}

type manifestEntry struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Backup is where the file that was there before now is, or "".
	Backup string `json:"backup,omitempty"`
}

// Installer works below a root directory: "/" on a node, a temp dir in
// tests, the host's root mounted into a DaemonSet pod.
type Installer struct {
	Root string
	// Now stamps backups; tests fix it.
	Now func() time.Time
}

func (in *Installer) path(p string) string { return filepath.Join(in.Root, p) }

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (in *Installer) readManifest() (*manifest, error) {
	data, err := os.ReadFile(in.path(ManifestPath))
	if errors.Is(err, fs.ErrNotExist) {
		return &manifest{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading install manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("install manifest %s is corrupt: %w", in.path(ManifestPath), err)
	}
	return &m, nil
}

func (m *manifest) entry(path string) (int, *manifestEntry) {
	for i := range m.Files {
		if m.Files[i].Path == path {
			return i, &m.Files[i]
		}
	}
	return -1, nil
}

// Plan says what Apply would do with files.
func (in *Installer) Plan(files []File) ([]Change, error) {
	m, err := in.readManifest()
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, f := range files {
		c, err := in.planFile(m, f)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (in *Installer) planFile(m *manifest, f File) (Change, error) {
	have, err := os.ReadFile(in.path(f.Path))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Change{Op: Create, Path: f.Path}, nil
	case err != nil:
		return Change{}, fmt.Errorf("reading %s: %w", f.Path, err)
	case bytes.Equal(have, f.Data):
		return Change{Op: Skip, Path: f.Path}, nil
	}
	_, e := m.entry(f.Path)
	switch {
	case e != nil && e.SHA256 == digest(have):
		return Change{Op: Replace, Path: f.Path, Detail: "ward's earlier version"}, nil
	case f.Keep:
		return Change{Op: Kept, Path: f.Path, Detail: "exists and differs; left as the operator's"}, nil
	}
	return Change{Op: Backup, Path: f.Path, Detail: "not ward's; the current file is kept as a backup"}, nil
}

// Apply writes files as planned and records them in the manifest.
func (in *Installer) Apply(files []File) ([]Change, error) {
	m, err := in.readManifest()
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, f := range files {
		c, err := in.planFile(m, f)
		if err != nil {
			return out, err
		}
		backup := ""
		switch c.Op {
		case Skip, Kept:
			out = append(out, c)
			continue
		case Backup:
			backup = fmt.Sprintf("%s.ward-backup-%s", f.Path, in.now().UTC().Format("20060102T150405Z"))
			if err := os.Rename(in.path(f.Path), in.path(backup)); err != nil {
				return out, fmt.Errorf("backing up %s: %w", f.Path, err)
			}
			c.Detail = "backup at " + backup
		}
		if err := writeFile(in.path(f.Path), f.Data, f.Mode); err != nil {
			return out, err
		}
		i, e := m.entry(f.Path)
		ne := manifestEntry{Path: f.Path, SHA256: digest(f.Data), Backup: backup}
		if e != nil {
			if ne.Backup == "" {
				ne.Backup = e.Backup
			}
			m.Files[i] = ne
		} else {
			m.Files = append(m.Files, ne)
		}
		// Record after every file, so an interrupted install can still be
		// undone.
		if err := in.writeManifest(m); err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (in *Installer) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in *Installer) writeManifest(m *manifest) error {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(in.path(ManifestPath), append(data, '\n'), 0o600)
}

// Uninstall reverts what the manifest records. With dryRun it only says
// what it would do.
func (in *Installer) Uninstall(dryRun bool) ([]Change, error) {
	m, err := in.readManifest()
	if err != nil {
		return nil, err
	}
	var out []Change
	var left []manifestEntry
	for _, e := range m.Files {
		have, err := os.ReadFile(in.path(e.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, Change{Op: Skip, Path: e.Path, Detail: "already gone"})
		case err != nil:
			return out, fmt.Errorf("reading %s: %w", e.Path, err)
		case digest(have) != e.SHA256:
			out = append(out, Change{Op: Leave, Path: e.Path, Detail: leaveAdvice(e)})
			left = append(left, e)
			continue
		default:
			out = append(out, Change{Op: Remove, Path: e.Path})
			if !dryRun {
				if err := os.Remove(in.path(e.Path)); err != nil {
					return out, fmt.Errorf("removing %s: %w", e.Path, err)
				}
			}
		}
		if e.Backup != "" {
			out = append(out, Change{Op: Restore, Path: e.Path, Detail: "from " + e.Backup})
			if !dryRun {
				if err := os.Rename(in.path(e.Backup), in.path(e.Path)); err != nil {
					return out, fmt.Errorf("restoring %s: %w", e.Path, err)
				}
			}
		}
	}
	if dryRun {
		return out, nil
	}
	if len(left) > 0 {
		m.Files = left
		return out, in.writeManifest(m)
	}
	out = append(out, Change{Op: Remove, Path: ManifestPath})
	if err := os.Remove(in.path(ManifestPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, err
	}
	return out, nil
}

// leaveAdvice says what to do about a file ward wrote that has changed
// since. Never "remove it": /etc/subuid and /etc/subgid are shared with
// useradd and the kubelet, and a file ward replaced is the operator's own.
func leaveAdvice(e manifestEntry) string {
	switch {
	case e.Path == SubUIDPath || e.Path == SubGIDPath:
		return fmt.Sprintf("changed since ward added its %q entry (other entries were added); kept as it is: the file is shared, never delete it; "+
			"remove the line starting with %q by hand once no container runs with ward's IDs", PoolUser, PoolUser+":")
	case e.Backup != "":
		return "changed since ward wrote it; kept as it is, and the file it replaced is kept at " + e.Backup + ": merge them by hand"
	}
	return "changed since ward wrote it; kept as it is: remove it yourself once nothing needs it"
}

// writeFile creates path's directory and replaces the file atomically.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return atomicfile.Write(path, data, mode, true)
}
