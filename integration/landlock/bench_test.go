package landlock_test

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/landlock"
)

// TestLauncherStartOverhead measures what ward-init adds to a container's
// start: `runc run` of /bin/true from the same hardened spec with and
// without the Landlock step, alternated in one run. A third spec has the
// step's two mounts (/.ward and the launcher's bind) but runs /bin/true
// without the launcher, to tell runc's mount work from the launcher's.
// Set WARD_BENCH_PAIRS (default 40) for more rounds; the target is a
// median of at most 2 ms. It runs only with WARD_BENCH=1 and reports, it
// does not assert: timings on a shared machine are not a test.
func TestLauncherStartOverhead(t *testing.T) {
	harness.RequireBench(t)
	e := need(t, basePolicy)
	pairs := harness.BenchPairs(40)
	rootfs := e.image(t)
	with := spec(rootfs, true, "/bin/true")
	e.harden(t, with, true)
	without := spec(rootfs, true, "/bin/true")
	e.harden(t, without, false)
	mounts := spec(rootfs, true, "/bin/true")
	e.harden(t, mounts, true)
	mounts.Process.Args = mounts.Process.Args[1:] // no launcher
	mounts.Process.Env = slices.DeleteFunc(mounts.Process.Env, func(kv string) bool { return strings.HasPrefix(kv, landlock.EnvVar+"=") })
	bundles := []string{bundleFor(t, with), bundleFor(t, without), bundleFor(t, mounts)}

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
	for _, b := range bundles {
		run(b) // warm caches for all
	}
	var dw, dwo, dm, diff, diffMounts []time.Duration
	for i := 0; i < pairs; i++ {
		var d [3]time.Duration
		for k := range 3 { // rotate which goes first
			j := (i + k) % 3
			d[j] = run(bundles[j])
		}
		dw, dwo, dm = append(dw, d[0]), append(dwo, d[1]), append(dm, d[2])
		diff, diffMounts = append(diff, d[0]-d[1]), append(diffMounts, d[2]-d[1])
	}
	t.Logf("%d rounds: runc run median with ward-init %v, without the step %v, with its mounts only %v", pairs, harness.Median(dw), harness.Median(dwo), harness.Median(dm))
	t.Logf("paired difference medians: whole step %v (target <= 2ms), mounts only %v", harness.Median(diff), harness.Median(diffMounts))

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
