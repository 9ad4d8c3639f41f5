package procstat

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	st, err := Parse("42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10")
	if err != nil || st.Comm != "a) b (c)" || st.PPid != 7 || st.State != "S" || st.StartTime != 12345 {
		t.Fatalf("%+v, %v", st, err)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) S", "42 (x) S x 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestReadSelf(t *testing.T) {
	st, err := Read(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if st.PPid != os.Getppid() || st.StartTime == 0 {
		t.Errorf("own stat %+v: parent %d expected, a start time", st, os.Getppid())
	}
}
