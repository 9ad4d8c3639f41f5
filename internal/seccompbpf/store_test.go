package seccompbpf

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/profiles"
)

// countingSource counts the profiles a store asks for.
type countingSource struct {
	gen   *profiles.SeccompGenerator
	calls int
}

func (c *countingSource) Profile(caps []string) (*specs.LinuxSeccomp, error) {
	c.calls++
	return c.gen.Profile(caps)
}

func TestStoreIndex(t *testing.T) {
	if _, err := Native(); err != nil {
		t.Skip(err)
	}
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func() (*Store, *countingSource) {
		src := &countingSource{gen: gen}
		s, err := NewStore(dir, src, "inputs-1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s, src
	}
	first, src := open()
	path, err := first.Filter([]string{"CAP_KILL", "CAP_CHOWN"})
	if err != nil || src.calls != 1 {
		t.Fatalf("first filter: %v, %d profiles", err, src.calls)
	}
	if again, _ := first.Filter([]string{"CAP_CHOWN", "CAP_KILL", "CAP_KILL"}); again != path || src.calls != 1 {
		t.Errorf("same set again: %s, %d profiles", again, src.calls)
	}

	// Another process finds it through the index without a profile.
	second, src2 := open()
	if got, err := second.Filter([]string{"CAP_CHOWN", "CAP_KILL"}); err != nil || got != path || src2.calls != 0 {
		t.Errorf("indexed: %s %v, %d profiles", got, err, src2.calls)
	}

	// A damaged filter is a miss, and is written again.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("allow everything"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, src3 := open()
	if got, err := third.Filter([]string{"CAP_CHOWN", "CAP_KILL"}); err != nil || got != path || src3.calls != 1 {
		t.Errorf("after damage: %s %v, %d profiles", got, err, src3.calls)
	}
	if b, _ := os.ReadFile(path); string(b) == "allow everything" {
		t.Error("the damaged filter was kept")
	}

	// An index entry naming another file is a miss.
	entries, _ := filepath.Glob(filepath.Join(dir, "index", "*"))
	for _, e := range entries {
		if err := os.WriteFile(e, []byte("../../etc/passwd"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fourth, src4 := open()
	if got, err := fourth.Filter([]string{"CAP_CHOWN", "CAP_KILL"}); err != nil || got != path || src4.calls != 1 {
		t.Errorf("after a bad index: %s %v, %d profiles", got, err, src4.calls)
	}

	// Other inputs (another ward build or kernel) never share an entry.
	other, err := NewStore(dir, &countingSource{gen: gen}, "inputs-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.indexPath(capsKey([]string{"CAP_CHOWN", "CAP_KILL"})) == first.indexPath(capsKey([]string{"CAP_CHOWN", "CAP_KILL"})) {
		t.Error("index entries of different inputs collide")
	}
}
