package capability

import (
	"slices"
	"testing"
)

func TestSets(t *testing.T) {
	if Count != 41 || Index("CAP_CHOWN") != 0 || Index("CAP_CHECKPOINT_RESTORE") != 40 || Index("CAP_NOPE") != -1 {
		t.Fatalf("table: count %d", Count)
	}
	s := SetOf([]string{"CAP_SYS_ADMIN", "CAP_CHOWN"}, []string{"CAP_CHOWN", "CAP_BOGUS"})
	if s.Len() != 2 || !s.Has("CAP_SYS_ADMIN") || s.Has("CAP_NET_RAW") || s.Has("CAP_BOGUS") {
		t.Errorf("set %v", s.Names())
	}
	if !slices.Equal(s.Names(), []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}) {
		t.Errorf("names %v, want kernel order", s.Names())
	}
	for _, c := range Baseline() {
		if !Known(c) {
			t.Errorf("baseline has unknown %s", c)
		}
	}
	if slices.Contains(Baseline(), "CAP_NET_RAW") {
		t.Error("baseline keeps CAP_NET_RAW")
	}
	all := All()
	all[0] = "mutated"
	if All()[0] != "CAP_CHOWN" {
		t.Error("All returns the package's own array")
	}
}
