package shim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// TestBenchmarkPods measures pod start (runp + create + start) and stop
// (stopp + rmp) with the ward handler against the plain runc handler,
// interleaved (the order alternates every pair), and each pod's shim RSS.
// It runs only with WARD_BENCH=1; WARD_BENCH_PAIRS sets the pairs (30).
func TestBenchmarkPods(t *testing.T) {
	harness.RequireBench(t)
	w := startWard(t)
	pairs := harness.BenchPairs(30)
	type sample struct {
		start, stop time.Duration
		rss, anon   int
	}
	res := map[string][]sample{}
	one := func(variant string, i int) {
		// "+seccomp": the pod asks for containerd's RuntimeDefault
		// profile, which ward keeps; runc+seccomp is the cost of a
		// seccomp filter alone, ward+seccomp ward's own cost beside it.
		handler, rd := strings.CutSuffix(variant, "+seccomp")
		t0 := time.Now()
		p, err := w.RunPod(harness.Pod{Name: fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(variant, "+", "-"), i), Handler: handler, RuntimeDefault: rd})
		if err != nil {
			t.Fatalf("%s pod %d: %v", variant, i, err)
		}
		start := time.Since(t0)
		rss, anon := shimRSS(p.SandboxID)
		t1 := time.Now()
		if err := w.RemovePod(p.SandboxID); err != nil {
			t.Fatalf("%s pod %d: %v", variant, i, err)
		}
		res[variant] = append(res[variant], sample{start, time.Since(t1), rss, anon})
	}
	// Warm-up: first pods pay for page cache and image unpacking.
	variants := []string{"ward", "runc", "runc+seccomp", "ward+seccomp"}
	for _, v := range variants {
		one(v, -1)
	}
	res = map[string][]sample{}
	for i := 0; i < pairs; i++ {
		// Rotate the order so that no variant always runs first.
		for k := range variants {
			one(variants[(i+k)%len(variants)], i)
		}
	}
	med := func(h string, f func(sample) float64) float64 {
		var v []float64
		for _, s := range res[h] {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	ratio := func(base string, f func(sample) float64) float64 {
		var r []float64
		for i := range res["ward"] {
			r = append(r, f(res["ward"][i])/f(res[base][i]))
		}
		slices.Sort(r)
		return r[len(r)/2]
	}
	startMs := func(s sample) float64 { return float64(s.start.Microseconds()) / 1000 }
	stopMs := func(s sample) float64 { return float64(s.stop.Microseconds()) / 1000 }
	rssKiB := func(s sample) float64 { return float64(s.rss) }
	anonKiB := func(s sample) float64 { return float64(s.anon) }
	t.Logf("%d rounds, interleaved (order rotated each round)", pairs)
	t.Logf("pod start ms (median): ward %.1f, runc %.1f, runc+seccomp %.1f; ward/runc %.3f, ward/runc+seccomp %.3f (medians of per-round ratios)",
		med("ward", startMs), med("runc", startMs), med("runc+seccomp", startMs), ratio("runc", startMs), ratio("runc+seccomp", startMs))
	t.Logf("pod stop ms (median):  ward %.1f, runc %.1f, runc+seccomp %.1f; ward/runc %.3f, ward/runc+seccomp %.3f",
		med("ward", stopMs), med("runc", stopMs), med("runc+seccomp", stopMs), ratio("runc", stopMs), ratio("runc+seccomp", stopMs))
	t.Logf("shim RSS KiB (median): ward %.0f, runc %.0f; of which anonymous (per pod; the rest is the binary's page cache, shared by all shims): ward %.0f, runc %.0f",
		med("ward", rssKiB), med("runc", rssKiB), med("ward", anonKiB), med("runc", anonKiB))
	var r []float64
	for i := range res["ward+seccomp"] {
		r = append(r, startMs(res["ward+seccomp"][i])/startMs(res["runc+seccomp"][i]))
	}
	slices.Sort(r)
	t.Logf("same seccomp profile (RuntimeDefault): pod start ms ward %.1f, runc %.1f; ward/runc %.3f",
		med("ward+seccomp", startMs), med("runc+seccomp", startMs), r[len(r)/2])
}

// shimRSS is the resident set and its anonymous part, in KiB, of the shim
// serving a pod.
func shimRSS(sandboxID string) (rss, anon int) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), "containerd-shim") || !strings.Contains(string(cmd), "\x00"+sandboxID) {
			continue
		}
		st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		for _, l := range strings.Split(string(st), "\n") {
			k, v, _ := strings.Cut(l, ":")
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			switch k {
			case "VmRSS":
				rss = n
			case "RssAnon":
				anon = n
			}
		}
		return rss, anon
	}
	return 0, 0
}
