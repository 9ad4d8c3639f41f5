package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/metrics"
)

// BenchmarkFollow: the daemon's cost per decision-log entry: reading and
// decoding a line of a rejection's size and counting it (b.N entries
// appended beforehand, then read by one poll).
func BenchmarkFollow(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	line, _ := json.Marshal(reject)
	line = append(line, '\n')
	m, err := metrics.New(metrics.Config{Logs: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	fl := decisionlog.Follower{Patterns: []string{path}, Entry: func(e decisionlog.Entry) { n++; m.Observe(e) }}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fl.Scan(false)
	var lines []byte
	for range b.N {
		lines = append(lines, line...)
	}
	if _, err := f.Write(lines); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	fl.Scan(false)
	b.StopTimer()
	if n != b.N {
		b.Fatalf("%d entries counted, %d written", n, b.N)
	}
}

// BenchmarkPoll: one poll of a file that did not change (once a second).
func BenchmarkPoll(b *testing.B) {
	path := filepath.Join(b.TempDir(), "decisions.jsonl")
	os.WriteFile(path, nil, 0o644)
	fl := decisionlog.Follower{Patterns: []string{path}}
	fl.Scan(false)
	b.ReportAllocs()
	for b.Loop() {
		fl.Scan(false)
	}
}
