package decisionlog

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ward-runtime/ward/judge"
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
