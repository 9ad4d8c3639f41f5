package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/landlock"
	"github.com/ward-runtime/ward/profiles"
)

// TestBenchmarkRun measures what ward-runtime adds to `run` of a busybox
// `true` bundle: ward-runtime (judge, rewrite, record, then runc with the
// hardened spec) against runc alone on the original spec, alternated in one
// run, plus runc alone on ward's hardened spec to show how much of the
// difference is the seccomp filter rather than ward itself.
//
//	WARD_BENCH_PAIRS=40 make test-integration   # or, after make build:
//	PATH=/opt/ward-deps/bin:$PATH WARD_BIN=$PWD/bin WARD_INTEGRATION=1 \
//	  go test -count=1 -run TestBenchmarkRun -v ./integration/runtime
//
// WARD_BENCH_MAX_RATIO makes the test fail above a median ratio; unset, it
// only reports (timings on shared CI machines are noisy).
func TestBenchmarkRun(t *testing.T) {
	e := newEnv(t)
	pairs := harness.BenchPairs(40)
	plain := e.newBundle("bench-runc", []string{"true"}, nil)
	wardB := e.newBundle("bench-ward", []string{"true"}, nil)
	orig, err := os.ReadFile(filepath.Join(wardB, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	timed := func(env []string, bin string, args ...string) time.Duration {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		return time.Since(start)
	}
	runcRoot := filepath.Join(e.dir, "bench-runc-root")
	wardRoot := filepath.Join(e.dir, "bench-ward-root")
	runRunc := func(i int) time.Duration {
		return timed(os.Environ(), e.runc, "--root", runcRoot, "run", "--bundle", plain, "r"+strconv.Itoa(i))
	}
	runWard := func(i int) time.Duration {
		// Each run starts from the caller's spec, as a container manager's
		// fresh bundle would; restoring it is not timed.
		if err := os.WriteFile(filepath.Join(wardB, "config.json"), orig, 0o644); err != nil {
			t.Fatal(err)
		}
		return timed(e.environ(), e.ward, "--root", wardRoot, "run", "--bundle", wardB, "w"+strconv.Itoa(i))
	}
	// Warm-up: page cache, the binaries, runc's and ward's first cgroups.
	runRunc(-1)
	runWard(-1)
	// ward's output, for the third column: runc alone on the hardened spec.
	// Its root.path is the idmapped mount ward made for that container,
	// gone with it: runc gets the bundle's own rootfs (the idmapped mount
	// is ward's work, which the ward column times), with the launcher's
	// mountpoint made, as container root cannot make it there.
	hardSpec, err := os.ReadFile(filepath.Join(wardB, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hs spec
	if err := json.Unmarshal(hardSpec, &hs); err != nil {
		t.Fatal(err)
	}
	hs["root"].(spec)["path"] = "rootfs"
	runHard := variant(e, "bench-hardened", hs, runcRoot, timed)
	// The same hardened spec with ward's baseline where runc put it before
	// (linux.seccomp, compiled by runc with libseccomp at every start) and
	// with no seccomp filter at all: what each way of filtering costs.
	oldWay, noFilter := withoutFilterMount(t, hs), withoutFilterMount(t, hs)
	if oldWay["process"].(spec)["args"].([]any)[0] == landlock.LauncherPath {
		prof, err := wardProfile(oldWay)
		if err != nil {
			t.Fatal(err)
		}
		oldWay["linux"].(spec)["seccomp"] = prof
	}
	runOld := variant(e, "bench-runc-seccomp", oldWay, runcRoot, timed)
	runNone := variant(e, "bench-no-seccomp", noFilter, runcRoot, timed)

	var runcT, wardT, hardT, oldT, noneT, ratios, ownRatios, filterCost, runcFilterCost []float64
	for i := 0; i < pairs; i++ {
		var r, w, h, o, n time.Duration
		// Alternate the order, so that neither side always runs second.
		if i%2 == 0 {
			r, w, h, o, n = runRunc(i), runWard(i), runHard(i), runOld(i), runNone(i)
		} else {
			n, o, h, w, r = runNone(i), runOld(i), runHard(i), runWard(i), runRunc(i)
		}
		runcT = append(runcT, ms(r))
		wardT = append(wardT, ms(w))
		hardT = append(hardT, ms(h))
		oldT = append(oldT, ms(o))
		noneT = append(noneT, ms(n))
		ratios = append(ratios, float64(w)/float64(r))
		ownRatios = append(ownRatios, float64(w)/float64(h))
		filterCost = append(filterCost, ms(h-n))
		runcFilterCost = append(runcFilterCost, ms(o-n))
	}
	ratio := harness.Median(ratios)
	t.Logf("ward-runtime run vs runc run, busybox true, %d alternated pairs:", pairs)
	t.Logf("  runc (original spec)                          median %.1f ms", harness.Median(runcT))
	t.Logf("  ward-runtime                                  median %.1f ms", harness.Median(wardT))
	t.Logf("  runc, ward's hardened spec (ward-init filter) median %.1f ms", harness.Median(hardT))
	t.Logf("  runc, hardened, ward's profile for runc       median %.1f ms", harness.Median(oldT))
	t.Logf("  runc, hardened, no seccomp filter             median %.1f ms", harness.Median(noneT))
	t.Logf("  median per-pair ratio ward/runc = %.3f", ratio)
	// Against runc on the very spec ward wrote, only ward's own process
	// differs: what the protections cost runc is left out.
	t.Logf("  median per-pair ratio ward/runc on the hardened spec = %.3f", harness.Median(ownRatios))
	t.Logf("  seccomp baseline's cost, median paired difference: installed by ward-init %.2f ms, compiled by runc %.2f ms",
		harness.Median(filterCost), harness.Median(runcFilterCost))
	if v, err := strconv.ParseFloat(os.Getenv("WARD_BENCH_MAX_RATIO"), 64); err == nil && ratio > v {
		t.Errorf("median ratio %.3f above WARD_BENCH_MAX_RATIO %.2f", ratio, v)
	}
}

// variant writes s as a bundle of its own (busybox rootfs, the launcher's
// mountpoint made, as container root cannot make it there) and returns a
// function that times `runc run` of it.
func variant(e *env, name string, s spec, runcRoot string, timed func([]string, string, ...string) time.Duration) func(int) time.Duration {
	t := e.t
	dir := e.newBundle(name, []string{"true"}, nil)
	if err := os.Mkdir(filepath.Join(dir, "rootfs", ".ward"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return func(i int) time.Duration {
		return timed(os.Environ(), e.runc, "--root", runcRoot, "run", "--bundle", dir, name+strconv.Itoa(i))
	}
}

// withoutFilterMount is a deep copy of s without the mount of ward's
// compiled seccomp filter.
func withoutFilterMount(t *testing.T, s spec) spec {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c spec
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	mounts, _ := c["mounts"].([]any)
	c["mounts"] = slices.DeleteFunc(mounts, func(m any) bool { return m.(spec)["destination"] == landlock.SeccompPath })
	if c["linux"] == nil {
		c["linux"] = spec{}
	}
	return c
}

// wardProfile is ward's seccomp profile for s's bounding set, as JSON
// values of the spec.
func wardProfile(s spec) (any, error) {
	var caps []string
	if pc, ok := s["process"].(spec)["capabilities"].(spec); ok {
		for _, c := range pc["bounding"].([]any) {
			caps = append(caps, c.(string))
		}
	}
	gen, err := profiles.NewSeccompGenerator(caps)
	if err != nil {
		return nil, err
	}
	p, err := gen.Profile(caps)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var v any
	return v, json.Unmarshal(b, &v)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
