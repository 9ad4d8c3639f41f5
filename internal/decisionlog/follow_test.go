package decisionlog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFollow: whatever is appended, in whatever pieces, the follower hands
// over exactly the lines that are entries, and never panics.
func FuzzFollow(f *testing.F) {
	f.Add([]byte(`{"door":"shim","event":"create","action":"harden"}`+"\n"+`{"door":"runtime"}`+"\n"), 10)
	f.Add([]byte("not json\n\n{\"event\":\"load\"}\n{\"half"), 3)
	f.Add([]byte("{}\n"), 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		path := filepath.Join(t.TempDir(), "decisions.jsonl")
		file, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		var got, problems int
		fl := Follower{Patterns: []string{path}, Entry: func(Entry) { got++ }, Problem: func(FollowProblem) { problems++ }}
		defer fl.closeAll()
		fl.Scan(false)
		if cut < 0 {
			cut = -cut
		}
		if len(data) > 0 {
			cut %= len(data) + 1
		} else {
			cut = 0
		}
		for _, piece := range [][]byte{data[:cut], data[cut:]} {
			file.Write(piece)
			fl.Scan(false)
		}
		want := 0
		lines := bytes.Split(data, []byte("\n"))
		for _, line := range lines[:len(lines)-1] { // the last has no newline yet
			var e Entry
			if len(bytes.TrimSpace(line)) > 0 && json.Unmarshal(line, &e) == nil {
				want++
			}
		}
		if got != want {
			t.Errorf("%d entries handed over, %d complete entry lines in %q", got, want, data)
		}
	})
}
