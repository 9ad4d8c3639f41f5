package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FileUID is the owner of p (not following a last symbolic link), as the
// host sees it: what the user-namespace tests compare with mapped IDs.
func FileUID(t testing.TB, p string) uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// WriteAuditPolicy writes ward's embedded default policy, in audit mode, to
// path: every decision made and logged, none applied. It fails the test if
// the default's mode line is not where it expects, rather than write an
// enforcing policy under an audit name.
func WriteAuditPolicy(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command(WardBin(t, "ward"), "policy", "default").Output()
	if err != nil {
		t.Fatalf("ward policy default: %v", err)
	}
	const enforce, audit = "\nmode: enforce\n", "\nmode: audit\n"
	if !strings.Contains(string(out), enforce) {
		t.Fatalf("ward policy default has no %q line to turn into audit mode", strings.TrimSpace(enforce))
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(out), enforce, audit, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// CopyFile copies src to dst with mode, making dst's directory: a binary
// or a rootfs file a test places where a container or runc reads it.
func CopyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}
