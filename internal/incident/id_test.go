package incident

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidID checks the hand-written validator against the pattern it
// replaced, on chosen cases and on random strings over the interesting
// alphabet.
func TestValidID(t *testing.T) {
	want := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	cases := []string{"", "a", "-a", ".a", "_a", "a-", "a.b_c-d", "..", ".", "a/b", "a b", "é", "a\x00",
		"20260102T150405.000000000Z-abcdef012345", strings.Repeat("a", 128), strings.Repeat("a", 129)}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09._-/ \x00\xff"
	for range 20000 {
		b := make([]byte, r.IntN(132))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		if got, w := validID(c), want.MatchString(c); got != w {
			t.Errorf("validID(%q) = %v, the pattern says %v", c, got, w)
		}
	}
}
