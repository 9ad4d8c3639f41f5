// Package decisionlog writes ward's decision log: one JSON object per line,
// one line per decision, appended to a file that operators ship to their log
// pipeline. Every front door writes the same format.
package decisionlog

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/version"
)

// Entry is one line of the log.
type Entry struct {
	// ID names the decision: alerts about the container carry it
	// (ward.decision.id), so an alert leads to the decision that let the
	// container run.
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
	// WardVersion is the build that decided; Write stamps it.
	WardVersion string `json:"wardVersion"`
	// Door is the front door that decided: "shim", "runtime" or "cli".
	Door string `json:"door"`
	// Event is "create" or "exec".
	Event       string `json:"event"`
	ContainerID string `json:"containerID,omitempty"`
	Bundle      string `json:"bundle,omitempty"`
	// Error is set when ward failed closed: the container did not start.
	Error string `json:"error,omitempty"`
	judge.Report
}

// NewID returns a fresh decision id: 16 random hex digits.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Log appends entries to a file. It is safe for concurrent use; each entry
// is written with one write(2) on an O_APPEND file, so lines from several
// processes (one runtime per container) do not interleave.
//
// A shim lives as long as its pod, so the file may be rotated under it
// (logrotate renames it, or removes it): before each write the path is
// compared with the open file, and a path that now names another file, or
// none, is reopened. A truncated file (copytruncate) needs nothing: O_APPEND
// writes land at its new end.
type Log struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// Open opens (creating if needed) the log at path.
func Open(path string) (*Log, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Log{path: path, f: f}, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening decision log: %w", err)
	}
	return f, nil
}

// Write appends e, stamping its time if unset and ward's version.
func (l *Log) Write(e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.WardVersion = version.Version()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding decision: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reopenIfRotated(); err != nil {
		return err
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("writing decision log: %w", err)
	}
	return nil
}

// reopenIfRotated reopens the path when it no longer names the open file.
// Two stats per decision: a few microseconds against a container start.
func (l *Log) reopenIfRotated() error {
	open, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("checking decision log: %w", err)
	}
	cur, err := os.Stat(l.path)
	if err == nil && os.SameFile(open, cur) {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return fmt.Errorf("reopening rotated decision log: %w", err)
	}
	l.f.Close()
	l.f = f
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
