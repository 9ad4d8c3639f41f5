package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ward-runtime/ward/internal/alert"
)

// ReadAlerts reads an alert file (one Falco-format JSON line each): no
// file is no alert; a line that does not parse is an error, after the
// lines that do.
func ReadAlerts(path string) ([]alert.Alert, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []alert.Alert
	var bad error
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		a, err := alert.Parse(sc.Bytes())
		if err != nil {
			bad = errors.Join(bad, fmt.Errorf("alert file %s: %w", path, err))
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(bad, sc.Err())
}
