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
// interleaved (the order rotates every round), and each pod's shim memory.
// It runs only with WARD_BENCH=1; WARD_BENCH_PAIRS sets the rounds (30).
//
// Variants: ward (default policy: hardened), ward-audit (the same judge in
// audit mode: ward's own cost, no protection applied), runc (a pod asking
// for no seccomp profile, the kubelet's default), and ward+seccomp and
// runc+seccomp (the pod asks for containerd's RuntimeDefault profile, which
// ward compiles once, composes with its own compiled baseline and has
// ward-init install, so runc does no seccomp work). Shim memory is read right after the start and again after a
// second of idleness, the state a pod's shim spends its life in.
//
// WARD_BENCH_BASE_SHIM names another build's shim binary (main's, say):
// it adds the variants base and base-audit, the same two handlers run by
// that binary (each with its own state directory), alternated with this
// build's in the same rounds. WARD_BENCH_VARIANTS (comma-separated)
// keeps only the variants named; ward-audit-nosensor (the audit handler
// with alerts.sensor off) is one more that can be named.
// WARD_BENCH_RESIDENT=1 keeps a pod of each ward handler running
// throughout (below).
func TestBenchmarkPods(t *testing.T) {
	harness.RequireBench(t)
	variants := []string{"ward", "ward-audit", "runc", "runc+seccomp", "ward+seccomp"}
	extra := []extraHandler{{Name: "ward-audit-nosensor", Audit: true, Config: "alerts: {sensor: false}\n"}}
	if base := os.Getenv("WARD_BENCH_BASE_SHIM"); base != "" {
		variants = append(variants, "base", "base-audit")
		extra = append(extra, extraHandler{Name: "base", Shim: base}, extraHandler{Name: "base-audit", Shim: base, Audit: true})
	}
	if only := os.Getenv("WARD_BENCH_VARIANTS"); only != "" {
		variants = strings.Split(only, ",")
	}
	w := startWard(t, extra...)
	pairs := harness.BenchPairs(30)
	type sample struct {
		start, stop         time.Duration
		rss, anon, anonIdle int
		threads             int
		cpuIdle             time.Duration
	}
	res := map[string][]sample{}
	one := func(variant string, i int) {
		handler, rd := strings.CutSuffix(variant, "+seccomp")
		t0 := time.Now()
		p, err := w.RunPod(harness.Pod{Name: fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(variant, "+", "-"), i), Handler: handler, RuntimeDefault: rd})
		if err != nil {
			t.Fatalf("%s pod %d: %v", variant, i, err)
		}
		start := time.Since(t0)
		rss, anon, _, _ := shimRSS(p.SandboxID)
		time.Sleep(time.Second)
		_, anonIdle, threads, cpu := shimRSS(p.SandboxID)
		t1 := time.Now()
		if err := w.RemovePod(p.SandboxID); err != nil {
			t.Fatalf("%s pod %d: %v", variant, i, err)
		}
		res[variant] = append(res[variant], sample{start, time.Since(t1), rss, anon, anonIdle, threads, cpu})
	}
	// Warm-up: first pods pay for page cache and image unpacking.
	for _, v := range variants {
		one(v, -1)
	}
	// With WARD_BENCH_RESIDENT=1 one pod per ward handler stays up for
	// the whole run, as on a node with pods running: it holds the
	// sensor's reader role, and every measured pod's shim waits for it
	// (without it each measured shim is the reader, its pod alone).
	if os.Getenv("WARD_BENCH_RESIDENT") == "1" {
		seen := map[string]bool{}
		for _, v := range variants {
			handler, _ := strings.CutSuffix(v, "+seccomp")
			if handler == "runc" || seen[handler] {
				continue
			}
			seen[handler] = true
			p, err := w.RunPod(harness.Pod{Name: "bench-resident-" + handler, Handler: handler})
			if err != nil {
				t.Fatalf("resident %s pod: %v", handler, err)
			}
			defer w.RemovePod(p.SandboxID)
		}
	}
	res = map[string][]sample{}
	for i := 0; i < pairs; i++ {
		for k := range variants {
			one(variants[(i+k)%len(variants)], i)
		}
	}
	med := func(h string, f func(sample) float64) float64 {
		var v []float64
		for _, s := range res[h] {
			v = append(v, f(s))
		}
		return harness.Median(v)
	}
	// ratio is the median of the per-round ratios of a to b.
	ratio := func(a, b string, f func(sample) float64) float64 {
		var r []float64
		for i := range res[a] {
			r = append(r, f(res[a][i])/f(res[b][i]))
		}
		return harness.Median(r)
	}
	// diff is the median of the per-round differences a - b.
	diff := func(a, b string, f func(sample) float64) float64 {
		var d []float64
		for i := range res[a] {
			d = append(d, f(res[a][i])-f(res[b][i]))
		}
		return harness.Median(d)
	}
	startMs := func(s sample) float64 { return float64(s.start.Microseconds()) / 1000 }
	stopMs := func(s sample) float64 { return float64(s.stop.Microseconds()) / 1000 }
	rssKiB := func(s sample) float64 { return float64(s.rss) }
	anonKiB := func(s sample) float64 { return float64(s.anon) }
	idleKiB := func(s sample) float64 { return float64(s.anonIdle) }
	cpuMs := func(s sample) float64 { return float64(s.cpuIdle.Microseconds()) / 1000 }
	threads := func(s sample) float64 { return float64(s.threads) }
	t.Logf("%d rounds, interleaved (order rotated each round); medians, ratios are medians of per-round ratios", pairs)
	if _, ok := res["runc"]; ok {
		for _, v := range variants {
			t.Logf("%-20s start %.1f ms (/runc %.3f), stop %.1f ms (/runc %.3f), shim anonymous %.0f KiB, after 1 s idle %.0f KiB (/runc %.3f), shim CPU %.1f ms, threads %.0f",
				v, med(v, startMs), ratio(v, "runc", startMs), med(v, stopMs), ratio(v, "runc", stopMs),
				med(v, anonKiB), med(v, idleKiB), ratio(v, "runc", idleKiB), med(v, cpuMs), med(v, threads))
		}
	}
	for _, p := range [][2]string{{"ward", "base"}, {"ward-audit", "base-audit"}, {"ward-audit", "ward-audit-nosensor"}} {
		if _, ok := res[p[1]]; ok && len(res[p[0]]) > 0 {
			t.Logf("%s/%s: start %.3f, stop %.3f, anonymous after 1 s idle %.3f (median paired difference %+.0f KiB), shim CPU %.3f",
				p[0], p[1], ratio(p[0], p[1], startMs), ratio(p[0], p[1], stopMs), ratio(p[0], p[1], idleKiB),
				diff(p[0], p[1], idleKiB), ratio(p[0], p[1], cpuMs))
		}
	}
	if !slices.Contains(variants, "ward") || !slices.Contains(variants, "runc+seccomp") {
		return
	}
	t.Logf("pod start ms: ward %.1f, ward-audit %.1f, runc %.1f, runc+seccomp %.1f", med("ward", startMs), med("ward-audit", startMs), med("runc", startMs), med("runc+seccomp", startMs))
	t.Logf("  ward/runc %.3f, ward-audit/runc %.3f (ward's own cost), ward/runc+seccomp %.3f",
		ratio("ward", "runc", startMs), ratio("ward-audit", "runc", startMs), ratio("ward", "runc+seccomp", startMs))
	t.Logf("  same seccomp profile (RuntimeDefault): ward %.1f, runc %.1f; ward/runc %.3f",
		med("ward+seccomp", startMs), med("runc+seccomp", startMs), ratio("ward+seccomp", "runc+seccomp", startMs))
	t.Logf("pod stop ms: ward %.1f, runc %.1f; ward/runc %.3f", med("ward", stopMs), med("runc", stopMs), ratio("ward", "runc", stopMs))
	t.Logf("shim RSS KiB: ward %.0f, runc %.0f; anonymous (per pod; the rest is the binary's page cache, shared by all shims) right after start: ward %.0f, ward-audit %.0f, runc %.0f; after 1 s idle: ward %.0f, ward-audit %.0f, runc %.0f",
		med("ward", rssKiB), med("runc", rssKiB), med("ward", anonKiB), med("ward-audit", anonKiB), med("runc", anonKiB),
		med("ward", idleKiB), med("ward-audit", idleKiB), med("runc", idleKiB))
	// CPU is what a busy node notices of a shim's work (the sensor's load
	// was most of it); wall time on a shared machine is the others' too.
	t.Logf("shim CPU ms (time on CPU of its threads, start to 1 s idle): ward %.1f, ward-audit %.1f, runc %.1f; ward/runc %.3f",
		med("ward", cpuMs), med("ward-audit", cpuMs), med("runc", cpuMs), ratio("ward", "runc", cpuMs))
}

// shimRSS is the resident set and its anonymous part, in KiB, the number
// of threads and the CPU time so far of the shim serving a pod.
func shimRSS(sandboxID string) (rss, anon, threads int, cpu time.Duration) {
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
			case "Threads":
				threads = n
			}
		}
		// Each thread's time on a CPU in ns (schedstat's first field):
		// stat's utime and stime are in 10 ms ticks, too coarse for a
		// shim's few tens of milliseconds. A Go program's threads live
		// as long as it does.
		tasks, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "task"))
		for _, task := range tasks {
			ss, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "task", task.Name(), "schedstat"))
			if f := strings.Fields(string(ss)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				cpu += time.Duration(ns)
			}
		}
		return rss, anon, threads, cpu
	}
	return 0, 0, 0, 0
}
