package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
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
	hard := e.newBundle("bench-hardened", []string{"true"}, nil)
	if err := os.Mkdir(filepath.Join(hard, "rootfs", ".ward"), 0o755); err != nil {
		t.Fatal(err)
	}
	hardSpec, err := os.ReadFile(filepath.Join(wardB, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hs spec
	if err := json.Unmarshal(hardSpec, &hs); err != nil {
		t.Fatal(err)
	}
	hs["root"].(spec)["path"] = "rootfs"
	if hardSpec, err = json.Marshal(hs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hard, "config.json"), hardSpec, 0o644); err != nil {
		t.Fatal(err)
	}
	runHard := func(i int) time.Duration {
		return timed(os.Environ(), e.runc, "--root", runcRoot, "run", "--bundle", hard, "h"+strconv.Itoa(i))
	}

	var runcT, wardT, hardT, ratios, ownRatios []float64
	for i := 0; i < pairs; i++ {
		var r, w, h time.Duration
		// Alternate the order, so that neither side always runs second.
		if i%2 == 0 {
			r, w, h = runRunc(i), runWard(i), runHard(i)
		} else {
			h, w, r = runHard(i), runWard(i), runRunc(i)
		}
		runcT = append(runcT, ms(r))
		wardT = append(wardT, ms(w))
		hardT = append(hardT, ms(h))
		ratios = append(ratios, float64(w)/float64(r))
		ownRatios = append(ownRatios, float64(w)/float64(h))
	}
	ratio := harness.Median(ratios)
	t.Logf("ward-runtime run vs runc run, busybox true, %d alternated pairs:", pairs)
	t.Logf("  runc (original spec)      median %.1f ms", harness.Median(runcT))
	t.Logf("  ward-runtime              median %.1f ms", harness.Median(wardT))
	t.Logf("  runc (ward's hardened spec) median %.1f ms", harness.Median(hardT))
	t.Logf("  median per-pair ratio ward/runc = %.3f", ratio)
	// Against runc on the very spec ward wrote, only ward's own process
	// differs: what the protections cost runc is left out.
	t.Logf("  median per-pair ratio ward/runc on the hardened spec = %.3f", harness.Median(ownRatios))
	if v, err := strconv.ParseFloat(os.Getenv("WARD_BENCH_MAX_RATIO"), 64); err == nil && ratio > v {
		t.Errorf("median ratio %.3f above WARD_BENCH_MAX_RATIO %.2f", ratio, v)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
