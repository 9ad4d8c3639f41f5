package harness

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireBench skips a benchmark test unless WARD_BENCH=1: timings on a
// shared machine are reports, not gates.
func RequireBench(t testing.TB) {
	t.Helper()
	if os.Getenv("WARD_BENCH") != "1" {
		t.Skip("benchmark: set WARD_BENCH=1 (timings are noisy; not a CI gate)")
	}
}

// BenchPairs is how many alternated rounds a benchmark runs:
// WARD_BENCH_PAIRS when it is a positive number, def otherwise.
func BenchPairs(def int) int {
	if n, err := strconv.Atoi(os.Getenv("WARD_BENCH_PAIRS")); err == nil && n > 0 {
		return n
	}
	return def
}

// Median is the middle value of xs, the mean of the two middle ones for an
// even count, and 0 for none; xs is left as it is. Benchmarks report
// medians: on a shared machine the outliers all lie on the slow side.
func Median[T ~int64 | ~float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Cost is what running a command took: Wall is until it exited; CPU is
// the processes it waited for (rusage), or, with Tree, everything that ran
// in its cgroup (TreeCPU).
type Cost struct {
	Wall, CPU time.Duration
	Tree      bool
}

// TreeCPU runs cmd (which must not be started) in a cgroup of its own and
// returns, besides its wall time, the CPU time of everything that ran in
// it: cmd, what it waited for, and what it started and left behind
// (the container's processes, which runc
// puts in a cgroup below its own). It waits up to 10 s for the last of
// them to end. rusage, by contrast, sees only the processes cmd waited
// for: where no cgroup v1 cpuacct hierarchy is mounted, CPU is that and
// Tree is false. The command runs under sh, which moves itself into the
// cgroup before it executes cmd: the same few milliseconds for every
// variant.
func TreeCPU(cmd *exec.Cmd) (Cost, error) {
	root := "/sys/fs/cgroup/cpuacct"
	dir := ""
	if _, err := os.Stat(filepath.Join(root, "cpuacct.usage")); err == nil {
		// Searchable by all, as cgroups are: runc resolves the
		// container's cgroup below it as container root, which under a
		// user namespace is an unprivileged host ID.
		if dir, err = os.MkdirTemp(root, "ward-bench."); err != nil || os.Chmod(dir, 0o755) != nil {
			dir = ""
		}
	}
	if dir != "" {
		defer RemoveCgroupTree(dir)
		argv := append([]string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir}, cmd.Args...)
		argv[4] = cmd.Path
		cmd.Path, cmd.Args = "/bin/sh", argv
	}
	start := time.Now()
	err := cmd.Run()
	c := Cost{Wall: time.Since(start)}
	if err != nil {
		return c, err
	}
	c.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if dir == "" {
		return c, nil
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !cgroupEmpty(dir); {
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return c, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	c.CPU, c.Tree = time.Duration(ns), true
	return c, err
}

// cgroupEmpty reports whether no task is left in dir or below it.
func cgroupEmpty(dir string) bool {
	empty := true
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "tasks" {
			if b, _ := os.ReadFile(p); len(strings.TrimSpace(string(b))) > 0 {
				empty = false
			}
		}
		return nil
	})
	return empty
}

// NodeCPU follows the CPU time of ward's node supervisors
// (`ward-runtime ward-supervise-node`, internal/wardruntime/node.go) run
// from one binary. They serve every container ward-runtime starts on the
// node and leave the cgroup of the call that started them, so no TreeCPU
// sees them; NodeCPU moves them into a cpuacct cgroup of its own and
// reads its usage.
type NodeCPU struct {
	bin string
	dir string
}

// NewNodeCPU follows the node supervisors of the ward-runtime binary bin;
// nil where no cgroup v1 cpuacct hierarchy is mounted.
func NewNodeCPU(bin string) *NodeCPU {
	root := "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(filepath.Join(root, "cpuacct.usage")); err != nil {
		return nil
	}
	dir, err := os.MkdirTemp(root, "ward-bench-node.")
	if err != nil {
		return nil
	}
	if r, err := filepath.EvalSymlinks(bin); err == nil {
		bin = r
	}
	return &NodeCPU{bin: bin, dir: dir}
}

// Read adopts any node supervisor of the binary not yet followed and
// returns the CPU time they have used since they were adopted (0 for nil).
func (n *NodeCPU) Read() time.Duration {
	if n == nil {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid := ent.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		if exe, _ := os.Readlink("/proc/" + pid + "/exe"); exe != n.bin || !slices.Contains(strings.Split(string(cmd), "\x00"), "ward-supervise-node") {
			continue
		}
		if cg, _ := os.ReadFile("/proc/" + pid + "/cgroup"); !strings.Contains(string(cg), filepath.Base(n.dir)) {
			os.WriteFile(filepath.Join(n.dir, "cgroup.procs"), []byte(pid), 0)
		}
	}
	b, err := os.ReadFile(filepath.Join(n.dir, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(ns)
}

// Close gives the supervisors back to the root cgroup and removes the
// cgroup.
func (n *NodeCPU) Close() {
	if n == nil {
		return
	}
	if b, err := os.ReadFile(filepath.Join(n.dir, "cgroup.procs")); err == nil {
		for _, pid := range strings.Fields(string(b)) {
			os.WriteFile(filepath.Join(filepath.Dir(n.dir), "cgroup.procs"), []byte(pid), 0)
		}
	}
	os.Remove(n.dir)
}
