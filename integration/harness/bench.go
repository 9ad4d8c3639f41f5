package harness

import (
	"os"
	"slices"
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

// Median is the middle value of xs, the mean of the two middle ones for an
// even count, and 0 for none; xs is left as it is. Benchmarks report
// medians: on a shared machine the outliers all lie on the slow side.
func Median[T ~int64 | ~float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
