package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// writer fills a bundle's temporary directory.
type writer struct {
	dir string
	m   *Manifest
	// err is the first write failure; later writes are skipped.
	err error
}

func (w *writer) note(format string, args ...any) {
	w.m.Notes = append(w.m.Notes, fmt.Sprintf(format, args...))
}

// file writes one file of the bundle, synced, and records its digest.
func (w *writer) file(name string, data []byte) {
	if w.err != nil {
		return
	}
	if err := writeSynced(filepath.Join(w.dir, name), data); err != nil {
		w.err = err
		return
	}
	sum := sha256.Sum256(data)
	w.m.Files = append(w.m.Files, File{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
}

// jsonFile writes v as indented JSON.
func (w *writer) jsonFile(name string, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		w.note("%s: encoding: %v", name, err)
		return
	}
	w.file(name, append(data, '\n'))
}

// finish writes SHA256SUMS and the manifest and syncs the directory.
func (w *writer) finish() error {
	if w.err != nil {
		return w.err
	}
	slices.SortFunc(w.m.Files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	var sums strings.Builder
	for _, f := range w.m.Files {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Name)
	}
	if err := writeSynced(filepath.Join(w.dir, SumsName), []byte(sums.String())); err != nil {
		return err
	}
	data, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	if err := writeSynced(filepath.Join(w.dir, ManifestName), append(data, '\n')); err != nil {
		return err
	}
	return syncDir(w.dir)
}

// writeSynced creates name (which must not exist) and syncs it: a bundle
// is evidence, and a state directory on disk keeps it across a crash.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
