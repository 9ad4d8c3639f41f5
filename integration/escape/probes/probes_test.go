package probes

import (
	"os"
	"testing"
)

// TestProbesAnswer runs every probe where the test runs (unprivileged or
// root, on the host): each must give a verdict and say why, without
// panicking and without leaving anything behind in the temp dir.
func TestProbesAnswer(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range All() {
		if seen[p.ID] {
			t.Errorf("duplicate probe %s", p.ID)
		}
		seen[p.ID] = true
		o := p.Run(Env{Self: self})
		switch o.Result {
		case Blocked, Reachable, Escaped:
		default:
			t.Errorf("%s: result %q", p.ID, o.Result)
		}
		if o.Detail == "" || len(o.Attack) == 0 {
			t.Errorf("%s: no detail or ATT&CK technique: %+v", p.ID, o)
		}
	}
	if len(seen) < 25 {
		t.Errorf("%d probes, the suite promises at least 25", len(seen))
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("probes left %d entries in the temp dir", len(left))
	}
}
