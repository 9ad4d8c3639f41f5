package freezer

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hierarchies are this node's freezers: the one Host picks, and on a
// hybrid node the unified hierarchy too, whose core freezer (cgroup.freeze)
// works in its child cgroups, so both code paths run on a real kernel.
func hierarchies(t *testing.T) []Hierarchy {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: makes cgroups")
	}
	h, err := Host()
	if err != nil {
		t.Fatalf("this node has a cgroup filesystem; Host: %v", err)
	}
	out := []Hierarchy{h}
	if h.Version == 1 {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 8 && strings.Contains(line, " - cgroup2 ") {
				out = append(out, Hierarchy{Version: 2, Root: f[4]})
				break
			}
		}
	}
	return out
}

// testCgroup makes a cgroup of its own under h's root, removed at cleanup
// (after its processes are killed).
func testCgroup(t *testing.T, h Hierarchy, name string) *Cgroup {
	t.Helper()
	c, err := h.Cgroup(fmt.Sprintf("/ward-freezer-test-%d-%s", os.Getpid(), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(c.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Thaw(ctx)
		if pids, _ := c.Pids(); len(pids) > 0 {
			c.Kill(ctx)
		}
		for i := 0; i < 100; i++ {
			if os.Remove(c.Dir()) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", c.Dir())
	})
	return c
}

// workload starts a shell in c that forks two sleeps (three processes),
// and returns once all three are in c.
func workload(t *testing.T, c *Cgroup) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "read x; sleep 300 & sleep 300 & wait")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := os.WriteFile(filepath.Join(c.Dir(), "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "go\n")
	for i := 0; ; i++ {
		pids, err := c.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 3 {
			return cmd
		}
		if i == 500 {
			t.Fatalf("%s: pids %v, want 3", c, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procState is the state letter of /proc/<pid>/stat.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func TestRealFreezeThaw(t *testing.T) {
	for _, h := range hierarchies(t) {
		t.Run(fmt.Sprintf("v%d", h.Version), func(t *testing.T) {
			c := testCgroup(t, h, "freeze")
			workload(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Freeze(ctx); err != nil {
				t.Fatal(err)
			}
			if s, err := c.State(); err != nil || s != Frozen {
				t.Fatalf("state %s, %v", s, err)
			}
			// /proc stays readable while frozen: what incident collection
			// relies on.
			pids, _ := c.Pids()
			if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0])); err != nil {
				t.Fatalf("reading a frozen process's cmdline: %v", err)
			}
			if err := c.Thaw(ctx); err != nil {
				t.Fatal(err)
			}
			if s, _ := c.State(); s != Thawed {
				t.Fatalf("state %s after thaw", s)
			}
		})
	}
}

func TestRealKillOnlyThatCgroup(t *testing.T) {
	for _, h := range hierarchies(t) {
		t.Run(fmt.Sprintf("v%d", h.Version), func(t *testing.T) {
			victim, bystander := testCgroup(t, h, "victim"), testCgroup(t, h, "bystander")
			vcmd := workload(t, victim)
			workload(t, bystander)
			before, _ := bystander.Pids()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			k, err := victim.Kill(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Frozen || len(k.Pids) != 3 {
				t.Fatalf("killed %+v, want 3 pids signalled while frozen", k)
			}
			if err := vcmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("the victim's shell: %v, want killed", err)
			}
			if pids, _ := victim.Pids(); len(pids) != 0 {
				t.Fatalf("victim still has %v", pids)
			}
			after, _ := bystander.Pids()
			if !equalInts(before, after) {
				t.Fatalf("bystander's processes %v became %v", before, after)
			}
			for _, p := range after {
				if st := procState(p); st != "S" && st != "R" {
					t.Errorf("bystander pid %d is %s", p, st)
				}
			}
			if s, _ := victim.State(); s != Thawed {
				t.Errorf("victim left %s", s)
			}
		})
	}
}

func TestRealLocate(t *testing.T) {
	for _, h := range hierarchies(t) {
		t.Run(fmt.Sprintf("v%d", h.Version), func(t *testing.T) {
			c := testCgroup(t, h, "locate")
			cmd := workload(t, c)
			got, err := Locate(h, "locate", cmd.Process.Pid, c.Path)
			if err != nil || got.Path != c.Path {
				t.Fatalf("Locate: %v, %v; want %s", got, err, c.Path)
			}
			// A spec naming another cgroup does not move the freezer there.
			if got, err := Locate(h, "locate", cmd.Process.Pid, "/elsewhere"); err == nil {
				t.Fatalf("Locate with the wrong cgroupsPath: %v", got)
			}
			if _, err := Locate(h, "x", 0, c.Path); err == nil {
				t.Fatal("pid 0 accepted")
			}
		})
	}
}

// BenchmarkRealFreezeThaw is one freeze and thaw of a three-process
// cgroup on this kernel.
func BenchmarkRealFreezeThaw(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root")
	}
	h, err := Host()
	if err != nil {
		b.Fatal(err)
	}
	c, _ := h.Cgroup(fmt.Sprintf("/ward-freezer-bench-%d", os.Getpid()))
	if err := os.Mkdir(c.Dir(), 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.Remove(c.Dir())
	cmd := exec.Command("/bin/sleep", "300")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	os.WriteFile(filepath.Join(c.Dir(), "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Freeze(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Thaw(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHostUnified(t *testing.T) {
	h, err := HostUnified()
	if err != nil {
		t.Fatalf("this node mounts cgroup2: %v", err)
	}
	if h.Version != 2 || h.Root == "" {
		t.Fatalf("%+v", h)
	}
}
