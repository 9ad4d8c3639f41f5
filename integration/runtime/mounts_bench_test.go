package runtime_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/landlock"
)

// TestBenchmarkWardMounts measures what ward's mounts under landlock.Dir
// cost runc at start (issue 17): runc on ward's hardened spec (detection
// off: a tmpfs, ward-init, the compiled filter), with the supervisor's
// socket added (detection on), with a second filter file added (a
// workload profile compiled by ward), against the same container with
// ward's files already in the image (no mount at all), one read-only bind
// of a host directory holding every file, and that directory with
// ward-init bound over it. The CPU column is the measurement; the results
// are in docs/benchmarks.md (Session 8: mounts).
//
//	PATH=/opt/ward-deps/bin:$PATH WARD_BIN=$PWD/bin WARD_INTEGRATION=1 WARD_BENCH=1 \
//	  WARD_BENCH_PAIRS=200 go test -count=1 -run TestBenchmarkWardMounts -v ./integration/runtime
func TestBenchmarkWardMounts(t *testing.T) {
	harness.RequireBench(t)
	e := newEnv(t)
	pairs := harness.BenchPairs(100)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	runcRoot := filepath.Join(e.dir, "mounts-runc-root")
	timed := func(env []string, bin string, args ...string) cost {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		c, err := harness.TreeCPU(cmd)
		if err != nil {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		return cost{wall: c.Wall, cpu: c.CPU}
	}

	hs := e.hardenedForRunc("mounts-ward", filepath.Join(e.dir, "mounts-ward-root"))
	var filter, launcher, ruleset string
	for _, m := range hs["mounts"].([]any) {
		switch m.(spec)["destination"] {
		case landlock.SeccompPath:
			filter = m.(spec)["source"].(string)
		case landlock.LauncherPath:
			launcher = m.(spec)["source"].(string)
		}
	}
	for _, v := range hs["process"].(spec)["env"].([]any) {
		if enc, ok := strings.CutPrefix(v.(string), landlock.EnvVar+"="); ok {
			ruleset = enc
		}
	}
	if filter == "" || launcher == "" || ruleset == "" {
		t.Fatalf("the hardened spec lacks ward's launcher, filter or ruleset: %v", hs)
	}
	// Stand-ins for the supervisor's socket and a second filter: only
	// their mounts are timed (ward-init dials no socket with detection off).
	sock := filepath.Join(e.dir, "mounts-supervisor.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	extra := filepath.Join(e.dir, "mounts-extra.bpf")
	writeFile(t, extra, "x", 0o644)
	ro := []any{"bind", "ro", "nosuid", "nodev"}
	roBind := func(dst, src string) spec {
		return spec{"destination": dst, "type": "bind", "source": src, "options": ro}
	}
	// wardFiles fills dir as ward's directory would be: ward-init, the
	// filter, and the handoff an exec session reads (the first process
	// then reads it too: it gets no ruleset in its environment).
	wardFiles := func(dir string) {
		harness.CopyFile(t, launcher, filepath.Join(dir, "ward-init"), 0o755)
		harness.CopyFile(t, filter, filepath.Join(dir, filepath.Base(landlock.SeccompPath)), 0o644)
		writeFile(t, filepath.Join(dir, filepath.Base(landlock.HandoffPath)), ruleset, 0o644)
	}

	var names []string
	var runs []func(int) cost
	add := func(name string, edit func(s spec), inImage bool) {
		s := cloneSpec(t, hs)
		if edit != nil {
			edit(s)
		}
		dir := variantBundle(e, "mounts-"+name, s)
		if inImage {
			wardFiles(filepath.Join(dir, "rootfs", landlock.Dir))
		}
		names = append(names, name)
		runs = append(runs, func(i int) cost {
			return timed(os.Environ(), e.runc, "--root", runcRoot, "run", "--bundle", dir, name+"-"+strconv.Itoa(i))
		})
	}
	mountsAdd := func(ms ...spec) func(spec) {
		return func(s spec) {
			for _, m := range ms {
				s["mounts"] = append(s["mounts"].([]any), m)
			}
		}
	}
	// noWard takes ward's mounts and the ruleset's variable out, then adds ms.
	noWard := func(ms ...spec) func(spec) {
		return func(s spec) {
			s["mounts"] = slices.DeleteFunc(s["mounts"].([]any), func(m any) bool {
				d := m.(spec)["destination"].(string)
				return d == landlock.Dir || strings.HasPrefix(d, landlock.Dir+"/")
			})
			p := s["process"].(spec)
			p["env"] = slices.DeleteFunc(p["env"].([]any), func(v any) bool { return strings.HasPrefix(v.(string), landlock.EnvVar+"=") })
			mountsAdd(ms...)(s)
		}
	}
	one := filepath.Join(e.dir, "mounts-one")
	wardFiles(one)
	two := filepath.Join(e.dir, "mounts-two")
	wardFiles(two)
	add("none", noWard(), true) // first: the others are against it
	add("3-tmpfs-init-filter", nil, false)
	add("4-plus-socket", mountsAdd(roBind(landlock.SupervisorPath, sock)), false)
	add("5-plus-profile", mountsAdd(roBind(landlock.SupervisorPath, sock), roBind(landlock.Dir+"/extra.bpf", extra)), false)
	add("1-dir", noWard(roBind(landlock.Dir, one)), false)
	add("2-dir-init", noWard(roBind(landlock.Dir, two), roBind(landlock.LauncherPath, launcher)), false)

	for _, run := range runs { // warm-up; each must start and exit 0
		run(-1)
	}
	wall, cpu := alternate(pairs, runs)
	t.Logf("runc run of busybox true, ward's files under %s mounted in each layout, %d alternated rounds (medians, ms):", landlock.Dir, pairs)
	for k, name := range names {
		var dw, dc []float64
		for i := range wall[k] {
			dw, dc = append(dw, wall[k][i]-wall[0][i]), append(dc, cpu[k][i]-cpu[0][i])
		}
		t.Logf("  %-22s wall %6.2f CPU %6.2f; paired difference against none: wall %+5.2f CPU %+5.2f",
			name, harness.Median(wall[k]), harness.Median(cpu[k]), harness.Median(dw), harness.Median(dc))
	}
}
