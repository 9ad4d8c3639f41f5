package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/install"
)

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInstallCommand(t *testing.T) {
	root, from := t.TempDir(), t.TempDir()
	for _, b := range install.Binaries() {
		if err := os.WriteFile(filepath.Join(from, b), []byte(b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/runc"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--root", root, "--from", from, "--bin-dir", "/opt/ward/bin"}

	code, out, errs := run(t, append([]string{"install", "--dry-run"}, args...)...)
	if code != ExitOK || !strings.Contains(out, "create             /opt/ward/bin/containerd-shim-ward-v2") ||
		!strings.Contains(out, "ACTION NEEDED") || !strings.Contains(out, "nothing was written") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errs)
	}
	if n := countFiles(t, root); n != 1 {
		t.Fatalf("dry run wrote %d files", n-1)
	}
	if code, out, errs = run(t, append([]string{"install"}, args...)...); code != ExitOK {
		t.Fatalf("install: %d\n%s%s", code, out, errs)
	}
	dropIn, err := os.ReadFile(filepath.Join(root, install.DropInPath))
	if err != nil || !strings.Contains(string(dropIn), `runtime_path = "/opt/ward/bin/containerd-shim-ward-v2"`) ||
		!strings.Contains(string(dropIn), `BinaryName = "/usr/sbin/runc"`) {
		t.Fatalf("drop-in: %v\n%s", err, dropIn)
	}
	if code, out, _ = run(t, append([]string{"install"}, args...)...); code != ExitOK || strings.Contains(out, "create ") {
		t.Fatalf("second install: %d\n%s", code, out)
	}
	if code, out, errs = run(t, "uninstall", "--root", root); code != ExitOK || !strings.Contains(out, "remove") {
		t.Fatalf("uninstall: %d\n%s%s", code, out, errs)
	}
	if n := countFiles(t, root); n != 1 {
		t.Errorf("uninstall left %d files besides runc", n-1)
	}
	if code, out, _ = run(t, "uninstall", "--root", root); code != ExitOK || !strings.Contains(out, "nothing to do") {
		t.Errorf("second uninstall: %d\n%s", code, out)
	}
	if code, _, _ = run(t, "install", "--root", root, "stray"); code != ExitBadInput {
		t.Errorf("stray argument: %d", code)
	}
}
