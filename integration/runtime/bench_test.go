package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/profiles"
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
	tree := false
	timed := func(env []string, bin string, args ...string) cost {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		// CPU time of the command's whole process tree (ward-runtime's
		// helper and the container's processes included): far steadier
		// than wall time on a shared machine.
		c, err := harness.TreeCPU(cmd)
		if err != nil {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		tree = c.Tree
		return cost{wall: c.Wall, cpu: c.CPU}
	}
	runcRoot := filepath.Join(e.dir, "bench-runc-root")
	wardRoot := filepath.Join(e.dir, "bench-ward-root")
	runRunc := func(i int) cost {
		return timed(os.Environ(), e.runc, "--root", runcRoot, "run", "--bundle", plain, "r"+strconv.Itoa(i))
	}
	// ward's node supervisor serves every ward-runtime container from no
	// caller's cgroup: each ward run is charged what it used since the
	// previous ward run ended (that run's reaping, which ends after runc,
	// and this run's hand-over and supervision).
	node := harness.NewNodeCPU(e.ward)
	defer node.Close()
	var nodeLast, nodeTotal time.Duration
	nodeRuns := 0
	runWard := func(i int) cost {
		// Each run starts from the caller's spec, as a container manager's
		// fresh bundle would; restoring it is not timed.
		if err := os.WriteFile(filepath.Join(wardB, "config.json"), orig, 0o644); err != nil {
			t.Fatal(err)
		}
		c := timed(e.environ(), e.ward, "--root", wardRoot, "run", "--bundle", wardB, "w"+strconv.Itoa(i))
		now := node.Read()
		if i >= 0 {
			c.cpu += now - nodeLast
			nodeTotal += now - nodeLast
			nodeRuns++
		}
		nodeLast = now
		return c
	}
	// Warm-up: page cache, the binaries, runc's and ward's first cgroups.
	runRunc(-1)
	runWard(-1)
	// ward's output, for the third column: runc alone on the hardened spec
	// (detection off: TestBenchmarkDetection times detection), on the
	// bundle's own rootfs (the idmapped mount is ward's work, which the
	// ward column times).
	hs := e.hardenedForRunc("bench-ward-off", wardRoot)
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
	// The hardened spec less one protection each: what that protection
	// costs runc at start.
	var os0 spec
	if err := json.Unmarshal(orig, &os0); err != nil {
		t.Fatal(err)
	}
	without := protectionVariants(t, hs, os0)
	for i := range without {
		without[i].run = variant(e, "bench-without-"+without[i].id, without[i].spec, runcRoot, timed)
	}

	cols := []string{"runc (original spec)", "ward-runtime", "runc, ward's hardened spec (ward-init filter)",
		"runc, hardened, ward's profile for runc", "runc, hardened, no seccomp filter"}
	runs := []func(int) cost{runRunc, runWard, runHard, runOld, runNone}
	for _, w := range without {
		cols = append(cols, "runc, hardened, without "+w.name)
		runs = append(runs, w.run)
	}
	nodeLast = node.Read()
	wall, cpu := alternate(pairs, runs)
	var ratios, cpuRatios, ownRatios, filterCost, runcFilterCost, cpuFilterCost, cpuRuncFilterCost []float64
	for i := range wall[0] {
		// Columns: runc, ward-runtime, hardened, hardened with runc's
		// filter, hardened with none.
		ratios = append(ratios, wall[1][i]/wall[0][i])
		cpuRatios = append(cpuRatios, cpu[1][i]/cpu[0][i])
		ownRatios = append(ownRatios, wall[1][i]/wall[2][i])
		filterCost = append(filterCost, wall[2][i]-wall[4][i])
		runcFilterCost = append(runcFilterCost, wall[3][i]-wall[4][i])
		cpuFilterCost = append(cpuFilterCost, cpu[2][i]-cpu[4][i])
		cpuRuncFilterCost = append(cpuRuncFilterCost, cpu[3][i]-cpu[4][i])
	}
	ratio := harness.Median(ratios)
	what := "CPU of the whole process tree (cgroup)"
	if !tree {
		what = "CPU of the waited processes (rusage: ward-runtime's detached helper is not in it)"
	}
	t.Logf("ward-runtime run vs runc run, busybox true, %d alternated pairs (medians, wall / %s):", pairs, what)
	for k, name := range cols {
		t.Logf("  %-60s %7.1f ms / %6.1f ms", name, harness.Median(wall[k]), harness.Median(cpu[k]))
	}
	t.Logf("  median per-pair ratio ward/runc = %.3f (CPU %.3f)", ratio, harness.Median(cpuRatios))
	if nodeRuns > 0 {
		t.Logf("  of ward-runtime's CPU, its node supervisor's: %.2f ms per run (mean, included above)", ms(nodeTotal)/float64(nodeRuns))
	}
	// Against runc on the very spec ward wrote, only ward's own process
	// differs: what the protections cost runc is left out.
	t.Logf("  median per-pair ratio ward/runc on the hardened spec = %.3f", harness.Median(ownRatios))
	t.Logf("  seccomp baseline's cost, median paired difference against no filter: installed by ward-init %.2f ms (CPU %.2f), compiled by runc %.2f ms (CPU %.2f)",
		harness.Median(filterCost), harness.Median(cpuFilterCost), harness.Median(runcFilterCost), harness.Median(cpuRuncFilterCost))
	for k, w := range without {
		var dw, dc []float64
		for i := range wall[2] {
			dw = append(dw, wall[2][i]-wall[5+k][i])
			dc = append(dc, cpu[2][i]-cpu[5+k][i])
		}
		t.Logf("  cost of %s, median paired difference of the hardened spec against it without: %.2f ms (CPU %.2f)", w.name, harness.Median(dw), harness.Median(dc))
	}
	if v, err := strconv.ParseFloat(os.Getenv("WARD_BENCH_MAX_RATIO"), 64); err == nil && ratio > v {
		t.Errorf("median ratio %.3f above WARD_BENCH_MAX_RATIO %.2f", ratio, v)
	}
}

// alternate runs each of runs once per round, pairs rounds, the order
// reversed every other round so that no variant always runs first, and
// returns each variant's wall and CPU times in ms, round by round.
func alternate(pairs int, runs []func(int) cost) (wall, cpu [][]float64) {
	wall, cpu = make([][]float64, len(runs)), make([][]float64, len(runs))
	for i := 0; i < pairs; i++ {
		for k := range runs {
			j := k
			if i%2 == 1 {
				j = len(runs) - 1 - k
			}
			c := runs[j](i)
			wall[j], cpu[j] = append(wall[j], ms(c.wall)), append(cpu[j], ms(c.cpu))
		}
	}
	return wall, cpu
}

// variantBundle writes s as a bundle of its own (busybox rootfs, the
// launcher's mountpoint made, as container root cannot make it there) and
// returns its directory.
func variantBundle(e *env, name string, s spec) string {
	t := e.t
	dir := e.newBundle(name, []string{"true"}, nil)
	if err := os.Mkdir(filepath.Join(dir, "rootfs", landlock.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// variant writes s as a bundle of its own (variantBundle) and returns a
// function that times `runc run` of it.
func variant(e *env, name string, s spec, runcRoot string, timed func([]string, string, ...string) cost) func(int) cost {
	dir := variantBundle(e, name, s)
	return func(i int) cost {
		return timed(os.Environ(), e.runc, "--root", runcRoot, "run", "--bundle", dir, name+strconv.Itoa(i))
	}
}

// withoutFilterMount is a deep copy of s without the mount of ward's
// compiled seccomp filter.
func withoutFilterMount(t *testing.T, s spec) spec {
	t.Helper()
	c := cloneSpec(t, s)
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

// protection is ward's hardened spec less one protection.
type protection struct {
	// id names its bundle and containers; name is what it is.
	id, name string
	spec     spec
	run      func(int) cost
}

// protectionVariants are copies of the hardened spec hs, each without one
// of the protections ward adds to the original spec orig: the user
// namespace (runc's side of it), the Landlock launcher with the seccomp
// filter it installs, and the masked paths beyond the original's.
func protectionVariants(t *testing.T, hs, orig spec) []protection {
	t.Helper()
	userns := withoutFilterMount(t, hs)
	ns := userns["linux"].(spec)
	ns["namespaces"] = slices.DeleteFunc(ns["namespaces"].([]any), func(n any) bool { return n.(spec)["type"] == "user" })
	delete(ns, "uidMappings")
	delete(ns, "gidMappings")
	// withoutFilterMount dropped the filter: put it back.
	userns["mounts"] = hs["mounts"]

	launcher := withoutFilterMount(t, hs)
	proc := launcher["process"].(spec)
	if args := proc["args"].([]any); len(args) > 0 && args[0] == landlock.LauncherPath {
		proc["args"] = args[1:]
	}
	proc["env"] = slices.DeleteFunc(proc["env"].([]any), func(v any) bool { return strings.HasPrefix(v.(string), landlock.EnvVar+"=") })
	launcher["mounts"] = slices.DeleteFunc(launcher["mounts"].([]any), func(m any) bool {
		d := m.(spec)["destination"].(string)
		return d == landlock.Dir || strings.HasPrefix(d, landlock.Dir+"/")
	})

	masked := withoutFilterMount(t, hs)
	masked["mounts"] = hs["mounts"]
	masked["linux"].(spec)["maskedPaths"] = orig["linux"].(spec)["maskedPaths"]
	return []protection{
		{id: "userns", name: "the user namespace", spec: userns},
		{id: "launcher", name: "the Landlock launcher and its filter", spec: launcher},
		{id: "masked", name: "ward's extra masked paths", spec: masked},
	}
}

// cost is one timed command.
type cost struct{ wall, cpu time.Duration }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cloneSpec is a deep copy of s.
func cloneSpec(t *testing.T, s spec) spec {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c spec
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// hardenedForRunc is the spec ward-runtime writes for a busybox `true`
// bundle, hardened with detection off (runc alone has no ward supervisor
// to hand a notifying filter to, and ward-init refuses to start without
// one), with root.path set back to the bundle's own rootfs: the idmapped
// mount ward made for that container is gone with it.
func (e *env) hardenedForRunc(name, wardRoot string) spec {
	t := e.t
	t.Helper()
	b := e.newBundle(name, []string{"true"}, nil)
	cmd := exec.Command(e.ward, "--root", wardRoot, "--ward-policy", e.detectionOffPolicy(), "run", "--bundle", b, name)
	cmd.Env = e.environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ward-runtime run: %v: %s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hs spec
	if err := json.Unmarshal(raw, &hs); err != nil {
		t.Fatal(err)
	}
	hs["root"].(spec)["path"] = "rootfs"
	return hs
}
