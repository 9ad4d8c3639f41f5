package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// ErrNoEntry means the log holds no entry for the container.
var ErrNoEntry = errors.New("no decision-log entry")

// maxLine bounds one entry: a report with every finding and change of a
// large spec stays well under it.
const maxLine = 4 << 20

// Last returns the last line of the log at path for containerID's create,
// as it was written (an incident keeps the entry byte for byte). Lines
// that do not decode are skipped: a log is appended to by several
// processes and may end in a line being written.
func Last(path, containerID string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading decision log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var last []byte
	needle := []byte(`"containerID"`)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, needle) {
			continue
		}
		var e struct {
			ContainerID string `json:"containerID"`
			Event       string `json:"event"`
		}
		if json.Unmarshal(line, &e) != nil || e.ContainerID != containerID || e.Event != "create" {
			continue
		}
		last = append(last[:0], line...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading decision log %s: %w", path, err)
	}
	if last == nil {
		return nil, fmt.Errorf("container %s: %w in %s", containerID, ErrNoEntry, path)
	}
	return last, nil
}
