package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// TestBenchmarkDetection measures what ward's supervisor costs, as
// alternated pairs through ward-runtime: the same bundle run with the
// policy's detection on (ward-init's baseline notifies, a supervisor per
// container) and off (the baseline refuses silently):
//
//   - start: `run` of busybox `true`, i.e. a container start;
//
//   - workload: `run` of dd copying 1 byte at a time, 200,000 times
//     (400,000 read/write calls, none of them notified), where the
//     filter's per-call cost shows.
//
//     WARD_BENCH=1 WARD_BENCH_PAIRS=30 PATH=/opt/ward-deps/bin:$PATH WARD_BIN=$PWD/bin \
//     WARD_INTEGRATION=1 go test -count=1 -run TestBenchmarkDetection -v ./integration/runtime
//
// It reports ratios; it asserts nothing about time.
func TestBenchmarkDetection(t *testing.T) {
	harness.RequireBench(t)
	e := newEnv(t)
	pairs := harness.BenchPairs(30)
	off := e.detectionOffPolicy()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	type variant struct {
		name   string
		bundle string
		orig   []byte
		args   []string
	}
	mk := func(name string, args []string, policyArgs ...string) variant {
		b := e.newBundle(name, args, nil)
		orig, err := os.ReadFile(filepath.Join(b, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		return variant{name, b, orig, policyArgs}
	}
	dd := []string{"busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=200000"}
	start := [2]variant{mk("start-on", []string{"true"}), mk("start-off", []string{"true"}, "--ward-policy", off)}
	work := [2]variant{mk("work-on", dd), mk("work-off", dd, "--ward-policy", off)}
	root := filepath.Join(e.dir, "bench-root")
	run := func(v variant, i int) time.Duration {
		if err := os.WriteFile(filepath.Join(v.bundle, "config.json"), v.orig, 0o644); err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"--root", root}, v.args...), "run", "--bundle", v.bundle, v.name+strconv.Itoa(i))
		cmd := exec.Command(e.ward, args...)
		cmd.Env = e.environ()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		return time.Since(t0)
	}
	for _, pair := range [][2]variant{start, work} {
		run(pair[0], -1)
		run(pair[1], -1)
		var on, offs, ratios []float64
		for i := 0; i < pairs; i++ {
			var a, b time.Duration
			if i%2 == 0 {
				a, b = run(pair[0], i), run(pair[1], i)
			} else {
				b, a = run(pair[1], i), run(pair[0], i)
			}
			on, offs = append(on, ms(a)), append(offs, ms(b))
			ratios = append(ratios, float64(a)/float64(b))
		}
		t.Logf("%s: detection on %.1f ms, off %.1f ms (medians of %d alternated pairs); median per-pair ratio on/off = %.3f",
			pair[0].name[:len(pair[0].name)-3], harness.Median(on), harness.Median(offs), pairs, harness.Median(ratios))
	}
}

// detectionOffPolicy writes the default policy with detection off into the
// test's directory and returns its path (for --ward-policy).
func (e *env) detectionOffPolicy() string {
	off := filepath.Join(e.dir, "detection-off.yaml")
	if err := os.WriteFile(off, []byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nextends: default\ndetection:\n  enabled: false\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return off
}
