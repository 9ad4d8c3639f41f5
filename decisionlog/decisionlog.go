// Package decisionlog writes ward's decision log: one JSON object per line,
// one line per decision, appended to a file that operators ship to their log
// pipeline. Every front door writes the same format.
package decisionlog

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ward-runtime/ward/judge"
)

// Entry is one line of the log.
type Entry struct {
	Time time.Time `json:"time"`
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

// Log appends entries to a file. It is safe for concurrent use; each entry
// is written with one write(2) on an O_APPEND file, so lines from several
// processes (one runtime per container) do not interleave.
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens (creating if needed) the log at path.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening decision log: %w", err)
	}
	return &Log{f: f}, nil
}

// Write appends e, stamping its time if unset.
func (l *Log) Write(e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding decision: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("writing decision log: %w", err)
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }
