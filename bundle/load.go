// Package bundle reads an OCI bundle's config.json and the workload metadata
// that container managers leave in its annotations.
//
// Input is hostile until proven otherwise: the file is read with a size
// limit, without following a symbolic link, and decoded strictly (see Parse).
// Every error is an *Error that names the field at fault, so an operator can
// fix the spec instead of guessing.
package bundle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/bounded"
)

// DefaultMaxSize bounds config.json. Real specs are 5 to 40 KiB; a generous
// limit still keeps a hostile 100 MB file from costing 100 MB of memory.
const DefaultMaxSize = 4 << 20

// Bundle is a loaded bundle.
type Bundle struct {
	// Dir is the bundle directory, or "" when a bare spec file was loaded.
	Dir string
	// ConfigPath is the file the spec was read from.
	ConfigPath string
	// Spec is the decoded, validated spec.
	Spec *specs.Spec
	// Workload is what the annotations say about the container.
	Workload Workload
	// FromOrig: Spec was read from the caller's original beside
	// ConfigPath, which is ward's rewrite of it (LoadOriginal).
	FromOrig bool
}

// Load reads path, which is either a bundle directory holding config.json or
// a spec file. maxSize <= 0 means DefaultMaxSize.
func Load(path string, maxSize int64) (*Bundle, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	b := &Bundle{ConfigPath: path}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{File: path, Err: fmt.Errorf("reading bundle: %w", err)}
	}
	if fi.IsDir() {
		b.Dir = path
		b.ConfigPath = filepath.Join(path, "config.json")
	}
	data, err := readConfig(b.ConfigPath, maxSize)
	if err != nil {
		return nil, &Error{File: b.ConfigPath, Err: err}
	}
	s, err := Parse(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = b.ConfigPath
		}
		return nil, err
	}
	b.Spec = s
	b.Workload = WorkloadOf(s)
	return b, nil
}

// Read reads a spec from r (`ward explain -`), named name in errors, with
// the same size bound and decoding as Load.
func Read(r io.Reader, name string, maxSize int64) (*Bundle, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, &Error{File: name, Err: fmt.Errorf("reading spec: %w", err)}
	}
	if int64(len(data)) > maxSize {
		return nil, &Error{File: name, Err: fmt.Errorf("is over the %d-byte limit", maxSize)}
	}
	s, err := Parse(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
		}
		return nil, err
	}
	return &Bundle{ConfigPath: name, Spec: s, Workload: WorkloadOf(s)}, nil
}

// errSymlink refuses a config.json that is a symbolic link, on every
// operating system (bounded.OpenNoFollow).
var errSymlink = errors.New("is a symbolic link; ward reads only a regular config.json")

// readConfig reads at most maxSize bytes of a regular file. It refuses a
// symbolic link (a bundle whose config.json points elsewhere is not one any
// container manager writes) and anything that is not a regular file (a FIFO
// would block the runtime forever). The same on every operating system:
// `ward explain` runs on developers' machines too, and a spec it accepts
// there is one the node accepts.
func readConfig(path string, maxSize int64) ([]byte, error) {
	f, err := bounded.OpenNoFollow(path)
	if errors.Is(err, bounded.ErrSymlink) {
		return nil, errSymlink
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the file is named by the *Error
	}
	if err != nil {
		return nil, fmt.Errorf("opening spec: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("is %d bytes, over the %d-byte limit", fi.Size(), maxSize)
	}
	// The size may change between Stat and Read; the LimitReader keeps the
	// bound regardless.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	if int64(len(data)) > maxSize {
		return nil, fmt.Errorf("is over the %d-byte limit", maxSize)
	}
	return data, nil
}
