package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// usernsPoolStart is the first host ID of the test pools: far above the
// IDs of this machine's users, and 1000 blocks of 65536 below 2^32.
const usernsPoolStart = 0x40000000

// UsernsConfig writes, under dir, a private subordinate-ID file with a
// "ward" pool of 1000 blocks and returns the `userns:` section of a
// ward-runtime or shim configuration that uses it, with a private
// allocator directory. The embedded default policy turns the user-namespace
// step on, so every front door a test starts needs a pool; the host's
// /etc/subuid and /var/lib/ward/userns are not the tests' to change.
func UsernsConfig(t testing.TB, dir string) string {
	t.Helper()
	sub := filepath.Join(dir, "subid")
	if err := os.WriteFile(sub, fmt.Appendf(nil, "ward:%d:%d\n", usernsPoolStart, 1000*65536), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "userns-state")
	return fmt.Sprintf("userns:\n  subuid: %s\n  subgid: %s\n  stateDir: %s\n", sub, sub, state)
}
