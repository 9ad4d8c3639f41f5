package bounded_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/bounded"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := bounded.ReadFile(small, 10); err != nil || string(data) != "0123456789" {
		t.Errorf("at the limit: %q, %v", data, err)
	}
	if _, err := bounded.ReadFile(small, 9); err == nil || !strings.Contains(err.Error(), "over the 9-byte limit") || !strings.Contains(err.Error(), small) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := bounded.ReadFile(filepath.Join(dir, "absent"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := bounded.ReadFile(dir, 10); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// TestOpenNoFollow: a symbolic link is refused the same way on every
// operating system; a regular file and a directory open (callers refuse
// what is not a regular file).
func TestOpenNoFollow(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := bounded.OpenNoFollow(file)
	if err != nil {
		t.Fatalf("regular file: %v", err)
	}
	f.Close()
	if _, err := bounded.OpenNoFollow(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	d, err := bounded.OpenNoFollow(dir)
	if err != nil {
		t.Fatalf("directory: %v", err)
	}
	if fi, err := d.Stat(); err != nil || !fi.IsDir() {
		t.Errorf("directory: %v, %v", fi, err)
	}
	d.Close()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		// Windows makes links only with a privilege or in developer mode.
		t.Skipf("cannot make a symbolic link on %s: %v", runtime.GOOS, err)
	}
	if _, err := bounded.OpenNoFollow(link); !errors.Is(err, bounded.ErrSymlink) || !strings.Contains(err.Error(), link) {
		t.Errorf("symbolic link: %v, want ErrSymlink naming it", err)
	}
}
