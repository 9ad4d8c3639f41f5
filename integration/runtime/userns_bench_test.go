package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// TestBenchmarkUserns measures what the userns step adds to starting a
// container: ward-runtime `run` of a busybox `true` bundle under a policy
// with the step on (block allocation, the idmapped root filesystem, a user
// namespace in runc, release at delete) against the same ward-runtime and
// policy with the step off, alternated in one run. Each side's time is
// run plus delete: the step's release is part of its cost. The userns
// side keeps its allocator state on a tmpfs, as on a node.
//
//	WARD_BENCH=1 WARD_BENCH_PAIRS=40 PATH=/opt/ward-deps/bin:$PATH WARD_BIN=$PWD/bin \
//	  WARD_INTEGRATION=1 go test -count=1 -run TestBenchmarkUserns -v ./integration/runtime
func TestBenchmarkUserns(t *testing.T) {
	harness.RequireBench(t)
	e, _ := usernsEnv(t)
	pairs := harness.BenchPairs(40)
	// The allocator's state on a tmpfs, as /run/ward/userns was by default
	// on a node (the test's directory is on ext4, where every allocation
	// and release pays two fsyncs).
	shm, err := os.MkdirTemp("/dev/shm", "ward-userns-bench.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	// Idmapped root filesystems are mounted below it: container root must
	// reach them.
	if err := os.Chmod(shm, 0o711); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(full)
	i := strings.Index(cfg, "  stateDir: ")
	cfg = cfg[:i] + "  stateDir: " + shm + "\n"
	writeFile(t, e.config, cfg, 0o644)
	// The same configuration without the policy that turns the step on.
	full = []byte(cfg)
	base, _, _ := strings.Cut(string(full), "policy: ")
	plainCfg := filepath.Join(e.dir, "runtime-plain.yaml")
	writeFile(t, plainCfg, base+"policy: "+filepath.Join(e.dir, "policy-off.yaml")+"\n", 0o644)
	writeFile(t, filepath.Join(e.dir, "policy-off.yaml"), "apiVersion: ward.dev/v1alpha1\nkind: Policy\nuserns:\n  enabled: false\n", 0o644)

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	side := func(name, cfg string) func(i int) time.Duration {
		b := e.newBundle("bench-"+name, []string{"true"}, nil)
		orig, err := os.ReadFile(filepath.Join(b, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(e.dir, "bench-root-"+name)
		env := append(os.Environ(), "WARD_CONFIG="+cfg)
		return func(i int) time.Duration {
			if err := os.WriteFile(filepath.Join(b, "config.json"), orig, 0o644); err != nil {
				t.Fatal(err)
			}
			id := name + strconv.Itoa(i)
			start := time.Now()
			for _, args := range [][]string{{"run", "--bundle", b, id}, {"delete", "--force", id}} {
				cmd := exec.Command(e.ward, append([]string{"--root", root}, args...)...)
				cmd.Env = env
				cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s %v: %v", name, args, err)
				}
			}
			return time.Since(start)
		}
	}
	on, off := side("userns", e.config), side("plain", plainCfg)
	on(-1)
	off(-1)
	var onT, offT, ratios []float64
	for i := 0; i < pairs; i++ {
		var a, b time.Duration
		if i%2 == 0 {
			a, b = on(i), off(i)
		} else {
			b, a = off(i), on(i)
		}
		onT, offT = append(onT, ms(a)), append(offT, ms(b))
		ratios = append(ratios, float64(a)/float64(b))
	}
	ratio := harness.Median(ratios)
	t.Logf("ward-runtime run+delete, busybox true, %d alternated pairs:", pairs)
	t.Logf("  userns step on   median %.1f ms", harness.Median(onT))
	t.Logf("  userns step off  median %.1f ms", harness.Median(offT))
	t.Logf("  median per-pair ratio on/off = %.3f (target <= 1.10)", ratio)
	if v, err := strconv.ParseFloat(os.Getenv("WARD_BENCH_MAX_RATIO"), 64); err == nil && ratio > v {
		t.Errorf("median ratio %.3f above WARD_BENCH_MAX_RATIO %.2f", ratio, v)
	}
}
