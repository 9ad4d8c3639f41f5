package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/policy"
)

// syncBuffer is output written by a command's goroutine (a server, a
// --follow) and read by the test.
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

// TestMetricsServe: the daemon says where it serves, counts what a front
// door writes after it started, and exits 0 when stopped.
func TestMetricsServe(t *testing.T) {
	dir := t.TempDir()
	l, err := decisionlog.Open(filepath.Join(dir, "decisions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stderr syncBuffer
	env := &Env{Stdout: io.Discard, Stderr: &stderr}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int)
	go func() {
		code <- runMetricsServe(ctx, env, "127.0.0.1:0", []string{filepath.Join(dir, "*.jsonl")}, false)
	}()
	serving := regexp.MustCompile(`serving (http://\S+) from`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := serving.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("no address in %q (exit %d)", stderr.String(), <-code)
	}
	entry := decisionlog.Entry{Door: "shim", Event: "create", Report: judge.Report{Action: policy.Reject, Backend: policy.Runc, Rule: "r"}}
	want := `ward_rejections_total{door="shim",rule="r"} 1`
	// The follower reads files present at start from their end: write
	// once it has the file open.
	body := waitFor(t, url, "ward_log_files 1")
	if err := l.Write(entry); err != nil {
		t.Fatal(err)
	}
	body = waitFor(t, url, want)
	cancel()
	if c := <-code; c != ExitOK {
		t.Errorf("exit %d: %s", c, stderr.String())
	}
	if !strings.Contains(body, want) {
		t.Errorf("no %q in /metrics:\n%s", want, body)
	}
}

// waitFor scrapes url until its body holds want, and returns the body.
func waitFor(t *testing.T, url, want string) string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if body = get(t, url); strings.Contains(body, want) {
			break
		}
	}
	return body
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

func TestMetricsServeBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"metrics", "serve"},
		{"metrics", "serve", "--listen", "127.0.0.1:0", "--log", "/var/log/ward/[.jsonl"},
	} {
		if code, _, stderr := run(t, args...); code != ExitBadInput || stderr == "" {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
