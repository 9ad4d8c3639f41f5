package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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

// TestAlertsAllPrintsNotices: --all prints the notice file after the
// alerts (in the state directory beside the alert file), and only then.
func TestAlertsAllPrintsNotices(t *testing.T) {
	state := t.TempDir()
	d, err := alert.Config{}.Open(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	rule := alert.Rule{ID: "drift", Name: "Drop and execute new binary in container", Priority: alert.PriorityCritical, Summary: "drift"}
	d.Emit(alert.Event{Rule: rule, Container: alert.Container{ID: "c1"}, Syscall: "execve", Path: "/tmp/x"})
	if err := d.Notice(alert.Event{Rule: rule, Container: alert.Container{ID: "c2"}, Syscall: "execve", Path: "/tmp/a"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	alerts := filepath.Join(state, alert.FileName)
	for _, all := range []bool{false, true} {
		var out bytes.Buffer
		paths := []string{alerts}
		if all {
			paths = append(paths, filepath.Join(filepath.Dir(alerts), alert.NoticeFileName))
		}
		if err := printAll(context.Background(), &out, paths, true, false, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := map[bool]int{false: 1, true: 2}[all]
		if len(lines) != want {
			t.Fatalf("--all=%v: %d lines, want %d: %q", all, len(lines), want, out.String())
		}
		if all {
			if n, err := alert.Parse([]byte(lines[1])); err != nil || n.Priority != alert.PriorityInformational || n.OutputFields["ward.notice"] != true {
				t.Errorf("notice line: %+v %v", n, err)
			}
		}
	}
}
