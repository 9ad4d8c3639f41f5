// Package recordfile keeps small JSON records, one file per ID in one
// directory: the node's pod records (admission.PodStore) and ward-runtime's
// container records. A record is replaced atomically (a temporary file
// renamed into place), so a concurrent reader sees the old record or the
// new one, never half of one. Records describe running containers and are
// not fsynced: none outlives a crash of its node, and their owners prune
// what their containers left.
//
// IDs are the caller's to validate before they become part of a path; the
// package refuses only what could leave the directory.
package recordfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/internal/bounded"
)

// Dir is a directory of records.
type Dir struct {
	Path string
	// Perm is each record's mode; the directory gets the same bits plus
	// search for whoever may read.
	Perm os.FileMode
	// What names a record in errors ("pod record", "state record").
	What string
	// Max bounds a record's size.
	Max int64
}

// ErrNotFound means there is no record with the ID.
var ErrNotFound = errors.New("no record")

func (d Dir) path(id string) (string, error) {
	if id == "" || id == "." || id == ".." || filepath.Base(id) != id {
		return "", fmt.Errorf("invalid %s id %q", d.What, id)
	}
	return filepath.Join(d.Path, id+".json"), nil
}

// dirPerm adds search to each class that may read.
func (d Dir) dirPerm() os.FileMode { return d.Perm | (d.Perm&0o444)>>2 }

// Write saves v as id's record.
func (d Dir) Write(id string, v any) error {
	path, err := d.path(id)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", d.What, err)
	}
	if err := os.MkdirAll(d.Path, d.dirPerm()); err != nil {
		return fmt.Errorf("creating %s directory: %w", d.What, err)
	}
	if err := atomicfile.Write(path, data, d.Perm, false); err != nil {
		return fmt.Errorf("writing %s: %w", d.What, err)
	}
	return nil
}

// Read decodes id's record into v; ErrNotFound when there is none.
func (d Dir) Read(id string, v any) error {
	path, err := d.path(id)
	if err != nil {
		return err
	}
	data, err := bounded.ReadFile(path, d.Max)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", d.What, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", d.What, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %s %s: %w", d.What, path, err)
	}
	return nil
}

// Remove deletes id's record; a missing one is not an error.
func (d Dir) Remove(id string) error {
	path, err := d.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", d.What, err)
	}
	return nil
}

// IDs lists the records' IDs; a missing directory has none.
func (d Dir) IDs() ([]string, error) {
	ents, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %ss: %w", d.What, err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
