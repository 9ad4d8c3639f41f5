package policy

import (
	"regexp"
	"strings"
	"testing"
)

// TestSubIDUserMatchesPattern holds subIDUser to the pattern it replaces.
func TestSubIDUserMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	names := []string{"", "ward", "_w", "9ward", "-w", ".w", "w.x-y_z", "Ward", strings.Repeat("a", 32), strings.Repeat("a", 33), "w x", "w\n"}
	for c := 0; c < 256; c++ {
		names = append(names, string([]byte{byte(c)}), "w"+string([]byte{byte(c)}))
	}
	for _, n := range names {
		if got, want := subIDUser(n), re.MatchString(n); got != want {
			t.Errorf("subIDUser(%q) = %v, pattern says %v", n, got, want)
		}
	}
}
