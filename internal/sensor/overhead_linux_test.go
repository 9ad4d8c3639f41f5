package sensor

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/freezer"
)

// openLoop times n opens and closes of /dev/null by this process.
func openLoop(n int) time.Duration {
	start := time.Now()
	for range n {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
	}
	return time.Since(start)
}

// TestOpenOverhead reports what the loaded sensor costs an open(2):
// alternated pairs, each timing the same loop with the sensor unloaded
// and loaded, for a process outside ward's containers (every other
// process of the node) and for one inside a watched cgroup. A report,
// not a gate: WARD_BENCH=1.
func TestOpenOverhead(t *testing.T) {
	if os.Getenv("WARD_BENCH") != "1" {
		t.Skip("benchmark: set WARD_BENCH=1")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	const n = 20000
	pairs := 30
	own, err := ownCgroupID()
	if err != nil {
		t.Fatal(err)
	}
	var off, unwatched, watched []float64
	for range pairs {
		off = append(off, float64(openLoop(n))/n)
		s, err := Load(Options{MountTracefs: true})
		if err != nil {
			t.Fatal(err)
		}
		unwatched = append(unwatched, float64(openLoop(n))/n)
		s.Watch(own)
		watched = append(watched, float64(openLoop(n))/n)
		s.Close()
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	ratio := func(a, b []float64) float64 {
		var r []float64
		for i := range a {
			r = append(r, a[i]/b[i])
		}
		return med(r)
	}
	t.Logf("open+close of /dev/null, median of %d pairs of %d: off %.0f ns, sensor loaded %.0f ns (ratio %.3f), in a watched cgroup %.0f ns (ratio %.3f)",
		pairs, n, med(off), med(unwatched), ratio(unwatched, off), med(watched), ratio(watched, off))
}

// ownCgroupID is this process's cgroup v2 ID.
func ownCgroupID() (uint64, error) {
	h, err := freezer.HostUnified()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return CgroupID(h.Root + p)
		}
	}
	return 0, os.ErrNotExist
}
