package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/ward-runtime/ward/internal/alert"
)

// ReadAlerts reads an alert file (one Falco-format JSON line each): no
// file is no alert; a complete line that does not parse is an error, after
// the lines that do. A last line without its newline is one being written:
// it is left for the next read.
func ReadAlerts(path string) ([]alert.Alert, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(data, []byte("\n"))
	lines = lines[:len(lines)-1] // "" after the last newline, or a partial line
	var out []alert.Alert
	var bad error
	for _, line := range lines {
		a, err := alert.Parse(line)
		if err != nil {
			bad = errors.Join(bad, fmt.Errorf("alert file %s: %w", path, err))
			continue
		}
		out = append(out, a)
	}
	return out, bad
}

// Alerts is ReadAlerts for a test that cannot go on without them: every
// line ward writes must parse.
func Alerts(t testing.TB, path string) []alert.Alert {
	t.Helper()
	out, err := ReadAlerts(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
