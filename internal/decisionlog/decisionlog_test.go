package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/policy"
)

func TestLinesStayWholeUnderConcurrency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	logs := make([]*Log, 3)
	for i := range logs {
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		logs[i] = l
	}
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e := Entry{Door: "runtime", Event: "create", ContainerID: "c", Report: judge.Report{Action: policy.Harden, Reason: string(make([]byte, 2000))}}
			if err := logs[i%len(logs)].Write(e); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d is not JSON: %v", n, err)
		}
		if e["action"] != "harden" || e["door"] != "runtime" || e["time"] == "" {
			t.Fatalf("line %d: %v", n, e)
		}
		n++
	}
	if n != 300 {
		t.Errorf("%d lines, want 300", n)
	}
}

// TestReopensAfterRotation: logrotate's default renames the file (or
// removes it) and the next line must land in a new file at the path;
// copytruncate truncates it in place.
func TestReopensAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	write := func(id string) {
		t.Helper()
		if err := l.Write(Entry{Door: "shim", Event: "create", ContainerID: id}); err != nil {
			t.Fatal(err)
		}
	}
	lines := func(p string) []Entry {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var out []Entry
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var e Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	write("a")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write("b")
	if got := lines(path + ".1"); len(got) != 1 || got[0].ContainerID != "a" {
		t.Errorf("rotated file: %+v", got)
	}
	if got := lines(path); len(got) != 1 || got[0].ContainerID != "b" || got[0].WardVersion == "" {
		t.Errorf("new file after rename: %+v", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write("c")
	if got := lines(path); len(got) != 1 || got[0].ContainerID != "c" {
		t.Errorf("new file after removal: %+v", got)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write("d")
	if data, _ := os.ReadFile(path); len(data) == 0 || data[0] != '{' {
		t.Errorf("after copytruncate the file starts %q, want a whole line", data[:min(len(data), 10)])
	}
}

func TestLast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range []Entry{
		{Door: "shim", Event: "create", ContainerID: "a", Report: judge.Report{Reason: "first"}},
		{Door: "shim", Event: "create", ContainerID: "b", Report: judge.Report{Reason: "other"}},
		{Door: "shim", Event: "exec", ContainerID: "a", Report: judge.Report{Reason: "exec"}},
		{Door: "shim", Event: "create", ContainerID: "a", Report: judge.Report{Reason: "second"}},
	} {
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	// A line being written by another process at the end.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"containerID":"a","event":"create","reason":"tru`)
	f.Close()
	line, err := Last(path, "a")
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil || e.Reason != "second" {
		t.Fatalf("got %s, %v", line, err)
	}
	if _, err := Last(path, "zz"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("unknown container: %v", err)
	}
}
