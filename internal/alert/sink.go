package alert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Sink takes alert lines (one JSON object and its newline).
type Sink interface {
	Write(line []byte) error
	Close() error
}

// File appends alert lines to a file, as the decision log does: one
// write(2) per line on an O_APPEND file, so several writers (a shim per
// pod, a supervisor per container) never interleave, and the path is
// reopened when it names another file (logrotate renamed or removed it).
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFile opens (creating if needed, mode 0640) the alert file at path.
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening alert file: %w", err)
	}
	return f, nil
}

func (s *File) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reopenIfRotated(); err != nil {
		return err
	}
	if _, err := s.f.Write(line); err != nil {
		return fmt.Errorf("writing alert file: %w", err)
	}
	return nil
}

func (s *File) reopenIfRotated() error {
	open, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("checking alert file: %w", err)
	}
	if cur, err := os.Stat(s.path); err == nil && os.SameFile(open, cur) {
		return nil
	}
	f, err := openAppend(s.path)
	if err != nil {
		return fmt.Errorf("reopening rotated alert file: %w", err)
	}
	s.f.Close()
	s.f = f
	return nil
}

func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// Stream writes alert lines to a stream (the shim's log, stdout).
type Stream struct {
	mu sync.Mutex
	w  io.Writer
}

// NewStream writes to w.
func NewStream(w io.Writer) *Stream { return &Stream{w: w} }

func (s *Stream) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(line)
	return err
}

func (s *Stream) Close() error { return nil }

// HTTP POSTs each alert, as Falco's http_output does, to an endpoint that
// reads Falco's JSON (Falcosidekick's root path). Posting happens on its
// own goroutine behind a bounded queue: a slow or absent receiver never
// holds up the supervisor that answers a system call; when the queue is
// full the alert is dropped from this sink (the file still has it) and
// counted.
type HTTP struct {
	url     string
	client  *http.Client
	queue   chan []byte
	done    chan struct{}
	mu      sync.Mutex
	dropped int
	failed  int
	closed  bool
}

// httpQueue bounds the alerts waiting to be posted.
const httpQueue = 256

// NewHTTP posts to url with the given timeout per request.
func NewHTTP(url string, timeout time.Duration) *HTTP {
	h := &HTTP{url: url, client: &http.Client{Timeout: timeout}, queue: make(chan []byte, httpQueue), done: make(chan struct{})}
	go h.run()
	return h
}

func (h *HTTP) run() {
	defer close(h.done)
	for line := range h.queue {
		if err := h.post(line); err != nil {
			h.mu.Lock()
			h.failed++
			h.mu.Unlock()
		}
	}
}

func (h *HTTP) post(line []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(bytes.TrimSuffix(line, []byte("\n"))))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ward")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("posting alert: %s", resp.Status)
	}
	return nil
}

func (h *HTTP) Write(line []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("posting alert: sink closed")
	}
	select {
	case h.queue <- bytes.Clone(line):
		return nil
	default:
		h.dropped++
		return fmt.Errorf("posting alert: queue full, dropped")
	}
}

// Close posts what is queued and stops.
func (h *HTTP) Close() error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.queue)
	}
	h.mu.Unlock()
	<-h.done
	return nil
}

// Stats returns how many alerts were dropped (queue full) and how many
// posts failed.
func (h *HTTP) Stats() (dropped, failed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped, h.failed
}
