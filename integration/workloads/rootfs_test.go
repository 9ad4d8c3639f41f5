package workloads_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// packages are what the corpus's image holds: real Debian 12 services and
// a build toolchain.
var packages = []string{
	"nginx-light", "redis-server", "postgresql", "python3", "python3-venv",
	"gcc", "libc6-dev", "make", "git", "procps", "ca-certificates",
}

// cacheDir keeps the root filesystem between runs: building it takes
// minutes (WARD_WORKLOADS_CACHE overrides it).
func cacheDir() string {
	if d := os.Getenv("WARD_WORKLOADS_CACHE"); d != "" {
		return d
	}
	return "/var/cache/ward-workloads"
}

// rootfsTar returns a Debian 12 root filesystem tarball built by
// mmdebstrap from Debian's archive, cached under cacheDir by the package
// list's digest.
func rootfsTar(t *testing.T) string {
	t.Helper()
	sum := sha256.Sum256([]byte("bookworm\n" + strings.Join(packages, ",")))
	out := filepath.Join(cacheDir(), "bookworm-"+hex.EncodeToString(sum[:6])+".tar")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		t.Fatalf("mmdebstrap not installed (apt-get install mmdebstrap): %v", err)
	}
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := out + ".tmp.tar"
	t.Logf("building %s with mmdebstrap (minutes; cached afterwards)", out)
	cmd := exec.Command(mm, "--variant=apt", "--include="+strings.Join(packages, ","), "bookworm", tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("mmdebstrap: %v\n%s", err, tail(string(b), 20))
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
