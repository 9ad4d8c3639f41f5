package version

import (
	"strings"
	"testing"
)

func TestVersionNeverEmpty(t *testing.T) {
	if Version() == "" {
		t.Fatal("empty version")
	}
	if s := String("ward"); !strings.HasPrefix(s, "ward version "+Version()+" (go") {
		t.Errorf("String = %q", s)
	}
}
