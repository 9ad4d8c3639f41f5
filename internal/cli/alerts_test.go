package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/alert"
)

func TestPrintAlerts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alerts.jsonl")
	f, err := alert.OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d := alert.NewDispatcher([]alert.Sink{f}, alert.Limits{})
	e := alert.Event{Rule: alert.Rule{ID: "mount", Name: "Mount", Priority: alert.PriorityWarning, Summary: "Mount attempted"},
		Container: alert.Container{ID: "c1"}, Syscall: "mount", Response: "deny"}
	d.Emit(e)
	var out bytes.Buffer
	if err := printAlerts(context.Background(), &out, p, false, false, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Mount attempted") || !strings.Contains(out.String(), "(rule: Mount)") {
		t.Errorf("text: %q", out.String())
	}
	out.Reset()
	printAlerts(context.Background(), &out, p, true, false, time.Millisecond)
	if _, err := alert.Parse(out.Bytes()); err != nil {
		t.Errorf("--json: %q: %v", out.String(), err)
	}

	// --follow sees an alert raised after it started, across a rotation.
	ctx, cancel := context.WithCancel(context.Background())
	var follow syncBuffer
	done := make(chan error)
	go func() { done <- printAlerts(ctx, &follow, p, true, true, time.Millisecond) }()
	time.Sleep(20 * time.Millisecond)
	os.Rename(p, p+".1")
	e.Container.ID = "c2"
	d.Emit(e)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(follow.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n := strings.Count(follow.String(), "\n"); n != 2 {
		t.Errorf("--follow printed %d alerts: %q", n, follow.String())
	}
	d.Close()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
