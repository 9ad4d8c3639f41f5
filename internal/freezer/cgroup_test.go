package freezer

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeKernel plays the kernel's side of a v2 cgroup directory made of
// plain files: a while after cgroup.freeze is written, cgroup.events says
// so, as a real freezer does once every task has stopped. It stands in
// where a kernel is not available (a v1 fake needs none: its control file
// is its state); TestReal* use this node's kernel, both freezers.
type fakeKernel struct {
	stop chan struct{}
	done chan struct{}
}

func startFakeKernel(t *testing.T, c *Cgroup) *fakeKernel {
	t.Helper()
	k := &fakeKernel{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for {
			select {
			case <-k.stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			b, _ := os.ReadFile(c.file("cgroup.freeze"))
			frozen := "0"
			if strings.TrimSpace(string(b)) == "1" {
				frozen = "1"
			}
			kernelWrite(c.file("cgroup.events"), "populated 1\nfrozen "+frozen+"\n")
		}
	}()
	t.Cleanup(func() { close(k.stop); <-k.done })
	return k
}

// kernelWrite replaces a file in one step, as a kernel's file changes.
func kernelWrite(name, content string) {
	tmp := name + ".new"
	if os.WriteFile(tmp, []byte(content), 0o644) == nil {
		os.Rename(tmp, name)
	}
}

func fakeCgroup(t *testing.T, version int, files map[string]string) *Cgroup {
	t.Helper()
	root := t.TempDir()
	c, err := Hierarchy{Version: version, Root: root}.Cgroup("/kubepods/pod1/c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(c.file(name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestFreezeFakeV2(t *testing.T) {
	c := fakeCgroup(t, 2, map[string]string{"cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n", "cgroup.procs": ""})
	startFakeKernel(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := c.State(); err != nil || s != Frozen {
		t.Fatalf("state %s, %v after Freeze", s, err)
	}
	if b, _ := os.ReadFile(c.file("cgroup.freeze")); strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("cgroup.freeze = %q, want 1", b)
	}
	if err := c.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.State(); s != Thawed {
		t.Fatalf("state %s after Thaw", s)
	}
}

func TestFreezeFakeV1(t *testing.T) {
	c := fakeCgroup(t, 1, map[string]string{"freezer.state": "THAWED\n", "cgroup.procs": ""})
	ctx := context.Background()
	if err := c.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.State(); s != Frozen {
		t.Fatalf("state %s", s)
	}
	if err := c.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.State(); s != Thawed {
		t.Fatalf("state %s", s)
	}
}

func TestFreezeTimesOutNamingTheState(t *testing.T) {
	// No kernel: cgroup.events never says frozen.
	c := fakeCgroup(t, 2, map[string]string{"cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := c.Freeze(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still FREEZING") {
		t.Fatalf("got %v", err)
	}
}

func TestNotSupported(t *testing.T) {
	// A v2 cgroup without cgroup.freeze is a kernel before 5.2.
	c := fakeCgroup(t, 2, map[string]string{"cgroup.procs": ""})
	err := c.Freeze(context.Background())
	var nse *NotSupportedError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &nse) || nse.MinimumVersion != "5.2" {
		t.Fatalf("got %v", err)
	}
	// A cgroup that is gone is not "not supported".
	gone, _ := Hierarchy{Version: 2, Root: t.TempDir()}.Cgroup("/gone")
	err = gone.Freeze(context.Background())
	if errors.Is(err, ErrNotSupported) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("gone cgroup: %v", err)
	}
}

func TestPidsRecursive(t *testing.T) {
	c := fakeCgroup(t, 2, map[string]string{"cgroup.procs": "12\n7\n"})
	sub := filepath.Join(c.Dir(), "inner")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte("7\n30\n"), 0o644)
	pids, err := c.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{7, 12, 30}; !equalInts(pids, want) {
		t.Fatalf("pids %v, want %v", pids, want)
	}
	os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte("x\n"), 0o644)
	if _, err := c.Pids(); err == nil {
		t.Fatal("bad pid accepted")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
