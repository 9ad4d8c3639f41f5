package shim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// start can run before create's start helper has opened the go FIFO (seen
// on a loaded node): the wake-up must wait for a late reader, and still
// give up when none comes.
func TestOpenWriterWaitsForLateReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		r, err := os.OpenFile(fifo, os.O_RDONLY, 0)
		if err != nil {
			close(got)
			return
		}
		defer r.Close()
		var b [1]byte
		if n, _ := r.Read(b[:]); n == 1 {
			got <- b[0]
		}
		close(got)
	}()
	w, err := openWriter(fifo, 5*time.Second)
	if err != nil {
		t.Fatalf("openWriter with a late reader: %v", err)
	}
	if _, err := w.Write([]byte{'s'}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := <-got; b != 's' {
		t.Fatalf("reader got %q, want 's'", b)
	}
}

func TestOpenWriterGivesUpWithoutReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openWriter(fifo, 20*time.Millisecond)
	if !errors.Is(err, unix.ENXIO) {
		t.Fatalf("openWriter without a reader: err = %v, want ENXIO", err)
	}
}
