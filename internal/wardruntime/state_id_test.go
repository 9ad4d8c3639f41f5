package wardruntime

import (
	"regexp"
	"testing"
)

// TestValidIDMatchesRuncsPattern holds validID to the pattern it replaces.
func TestValidIDMatchesRuncsPattern(t *testing.T) {
	re := regexp.MustCompile(`^[\w+\-.]+$`)
	for _, id := range []string{"", "a", "A-b_c.d+e", "x/y", "x y", "ü", "..", "a\x00", "0", "a:b", "a\n", "-", "~", "`"} {
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, pattern says %v", id, got, want)
		}
	}
	for c := 0; c < 256; c++ {
		id := "a" + string(rune(c))
		if c >= 0x80 {
			id = "a" + string([]byte{byte(c)})
		}
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, pattern says %v", id, got, want)
		}
	}
}
