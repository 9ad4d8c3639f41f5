package landlock_test

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestLauncherStartOverhead measures what ward-init adds to a container's
// start: `runc run` of /bin/true from the same hardened spec with and
// without the Landlock step, alternated in one run. Set WARD_BENCH_PAIRS
// (default 40) for more pairs; the target is a median of at most 2 ms.
// It runs only with WARD_BENCH=1.
func TestLauncherStartOverhead(t *testing.T) {
	if os.Getenv("WARD_BENCH") != "1" {
		t.Skip("benchmark: set WARD_BENCH=1 (timings are noisy; not a CI gate)")
	}
	e := need(t, basePolicy)
	pairs := 40
	if v, err := strconv.Atoi(os.Getenv("WARD_BENCH_PAIRS")); err == nil && v > 0 {
		pairs = v
	}
	rootfs := e.image(t)
	with := spec(rootfs, true, "/bin/true")
	e.harden(t, with, true)
	without := spec(rootfs, true, "/bin/true")
	e.harden(t, without, false)
	bWith, bWithout := bundleFor(t, with), bundleFor(t, without)

	run := func(bundle string) time.Duration {
		id := e.nextID()
		start := time.Now()
		out, err := exec.Command(e.runc, "--root", e.root, "run", "--bundle", bundle, id).CombinedOutput()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("runc run: %v %s", err, out)
		}
		return d
	}
	run(bWith) // warm caches for both
	run(bWithout)
	var dw, dwo, diff []time.Duration
	for i := 0; i < pairs; i++ {
		var a, b time.Duration
		if i%2 == 0 { // alternate which goes first
			a, b = run(bWith), run(bWithout)
		} else {
			b, a = run(bWithout), run(bWith)
		}
		dw, dwo, diff = append(dw, a), append(dwo, b), append(diff, a-b)
	}
	med := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	t.Logf("%d pairs: runc run median with ward-init %v, without %v, paired difference median %v",
		pairs, med(dw), med(dwo), med(diff))
	if m := med(diff); m > 2*time.Millisecond {
		t.Errorf("launcher adds %v at the median, over the 2 ms target", m)
	}

	// The launcher alone, without runc's noise: inside one container
	// whose own process is left outside Landlock (the launcher is not
	// executable from inside a domain), `ward-init /bin/true` with the
	// container's ruleset in its environment (decode, plan, enforce,
	// execve) against `/bin/true`, alternated.
	in := spec(rootfs, true, "/bin/true")
	e.harden(t, in, true)
	in.Process.Args = []string{"llprobe", "bench-launcher", strconv.Itoa(pairs * 5)}
	r := e.run(t, in)
	if r.code != 0 {
		t.Fatalf("bench-launcher: %d %s %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("inside the container: %s", r.stdout)
}
