package harness

import (
	"bufio"
	"os"
	"testing"

	"github.com/ward-runtime/ward/internal/alert"
)

// Alerts reads ward's alert file at path (none yet: none); a line that is
// not an alert fails the test: every line ward writes must parse.
func Alerts(t testing.TB, path string) []alert.Alert {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []alert.Alert
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		a, err := alert.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("alert file %s: %v", path, err)
		}
		out = append(out, a)
	}
	return out
}
