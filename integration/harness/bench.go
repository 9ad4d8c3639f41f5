package harness

import (
	"os"
	"strconv"
	"testing"
)

// RequireBench skips a benchmark test unless WARD_BENCH=1: timings on a
// shared machine are reports, not gates.
func RequireBench(t testing.TB) {
	t.Helper()
	if os.Getenv("WARD_BENCH") != "1" {
		t.Skip("benchmark: set WARD_BENCH=1 (timings are noisy; not a CI gate)")
	}
}

// BenchPairs is how many alternated rounds a benchmark runs:
// WARD_BENCH_PAIRS when it is a positive number, def otherwise.
func BenchPairs(def int) int {
	if n, err := strconv.Atoi(os.Getenv("WARD_BENCH_PAIRS")); err == nil && n > 0 {
		return n
	}
	return def
}
