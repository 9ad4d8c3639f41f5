package userns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a separate allocating process, so that the
// lock is exercised across processes, as between shims.
func TestMain(m *testing.M) {
	switch os.Getenv("WARD_USERNS_HELPER") {
	case "allocate":
		a, err := NewAllocator(os.Getenv("WARD_USERNS_DIR"), []Range{{Start: 1 << 20, Size: 64 * BlockSize}})
		if err == nil {
			var r Range
			r, err = a.Allocate(os.Getenv("WARD_USERNS_OWNER"))
			fmt.Println(r.Start)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "hang":
		a, err := NewAllocator(os.Getenv("WARD_USERNS_DIR"), []Range{{Start: 1 << 20, Size: 64 * BlockSize}})
		if err != nil {
			os.Exit(1)
		}
		a.beforeRename = func() {
			fmt.Println("ready")
			time.Sleep(time.Hour)
		}
		_, _ = a.Allocate("victim")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestParseSubIDAndPool(t *testing.T) {
	entries, err := ParseSubID(strings.NewReader("# comment\nalice:100000:65536\nkubelet:65536000:65536000\nward:1000000000:655360\n"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := Pool(entries, "ward")
	if err != nil || len(pool) != 1 || pool[0] != (Range{Start: 1000000000, Size: 655360}) {
		t.Fatalf("pool %v, %v", pool, err)
	}
	for _, tt := range []struct{ file, want string }{
		{"ward:x:100\n", "line 1: start"},
		{"ward:100\n", "line 1: want name:start:count"},
		{"ward:100:0\n", "positive"},
		{"ward:4294967295:2\n", "past the 32-bit"},
	} {
		if _, err := ParseSubID(strings.NewReader(tt.file)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.file, err, tt.want)
		}
	}
	for _, tt := range []struct{ file, want string }{
		{"alice:100000:65536\n", `no subordinate ID range for "ward"`},
		{"ward:1000:65536\n", "below 65536"},
		{"kubelet:65536000:65536000\nward:100000000:65536\n", `overlaps 65536000-131071999 of "kubelet"`},
	} {
		e, err := ParseSubID(strings.NewReader(tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Pool(e, "ward"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.file, err, tt.want)
		}
	}
}

func TestAllocateReleaseExhaust(t *testing.T) {
	a, err := NewAllocator(t.TempDir(), []Range{{Start: 200000, Size: 3 * BlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := a.Allocate("pod-1")
	if err != nil || r1 != (Range{Start: 200000, Size: BlockSize}) {
		t.Fatalf("first block %v, %v", r1, err)
	}
	again, err := a.Allocate("pod-1")
	if err != nil || again != r1 {
		t.Fatalf("same owner got %v, want %v", again, r1)
	}
	r2, _ := a.Allocate("pod-2")
	r3, _ := a.Allocate("pod-3")
	if r2.Overlaps(r1) || r3.Overlaps(r2) || r3.End() != 200000+3*BlockSize {
		t.Fatalf("blocks %v %v %v", r1, r2, r3)
	}
	if _, err := a.Allocate("pod-4"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("fourth allocation: %v, want ErrExhausted", err)
	}
	if err := a.Release("pod-2"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("pod-2"); err != nil {
		t.Fatalf("second release: %v", err)
	}
	r4, err := a.Allocate("pod-4")
	if err != nil || r4 != r2 {
		t.Fatalf("after release got %v, %v; want the freed %v", r4, err, r2)
	}
	owners, err := a.Owners()
	if err != nil || len(owners) != 3 {
		t.Errorf("owners %v, %v", owners, err)
	}
}

// TestStateOfAnotherBoot: blocks are held by running containers, so after a
// reboot (another boot ID) every recorded owner is void and its block free;
// a state written before the boot ID was recorded is kept as it is.
func TestStateOfAnotherBoot(t *testing.T) {
	for _, tt := range []struct {
		name, boot string
		wantKept   bool
	}{
		{"another boot", `"boot": "00000000-0000-0000-0000-000000000000",`, false},
		{"no boot ID", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAllocator(t.TempDir(), []Range{{Start: 200000, Size: 2 * BlockSize}})
			if err != nil {
				t.Fatal(err)
			}
			old := `{"version": 1, ` + tt.boot + ` "owners": {"gone": {"start": 200000, "size": 65536}}}`
			if err := os.WriteFile(a.statePath(), []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := a.Allocate("new")
			if err != nil {
				t.Fatal(err)
			}
			owners, err := a.Owners()
			if err != nil {
				t.Fatal(err)
			}
			_, kept := owners["gone"]
			if kept != tt.wantKept || kept == (r.Start == 200000) {
				t.Errorf("old owner kept %v (want %v), new block %v, owners %v", kept, tt.wantKept, r, owners)
			}
			data, _ := os.ReadFile(a.statePath())
			boot, _ := os.ReadFile(bootIDPath)
			if !strings.Contains(string(data), strings.TrimSpace(string(boot))) {
				t.Errorf("state does not record this boot: %s", data)
			}
		})
	}
}

func TestCorruptStateRefuses(t *testing.T) {
	dir := t.TempDir()
	a, err := NewAllocator(dir, []Range{{Start: 200000, Size: BlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.statePath(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate("pod"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Allocate on corrupt state: %v", err)
	}
}

// TestConcurrentProcesses allocates from 50 processes at once: 50 disjoint
// blocks, as 50 concurrent pod creates on one node would need.
func TestConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	starts := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "WARD_USERNS_HELPER=allocate", "WARD_USERNS_DIR="+dir, fmt.Sprintf("WARD_USERNS_OWNER=pod-%d", i))
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("process %d: %v", i, err)
				return
			}
			starts[i] = strings.TrimSpace(string(out))
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, s := range starts {
		if seen[s] {
			t.Errorf("block %s handed out twice (process %d)", s, i)
		}
		seen[s] = true
	}
	a, _ := NewAllocator(dir, []Range{{Start: 1 << 20, Size: 64 * BlockSize}})
	owners, err := a.Owners()
	if err != nil || len(owners) != n {
		t.Fatalf("state holds %d owners, %v", len(owners), err)
	}
	var all []Range
	for _, r := range owners {
		for _, o := range all {
			if o.Overlaps(r) {
				t.Fatalf("%v overlaps %v", r, o)
			}
		}
		all = append(all, r)
	}
}

// TestKillMidAllocation kills -9 an allocating process after it wrote the
// new state and before it renamed it into place: the lock must be free and
// the state the old one.
func TestKillMidAllocation(t *testing.T) {
	dir := t.TempDir()
	a, err := NewAllocator(dir, []Range{{Start: 1 << 20, Size: 64 * BlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate("before"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WARD_USERNS_HELPER=hang", "WARD_USERNS_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	done := make(chan error, 1)
	go func() {
		_, err := a.Allocate("after")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not released by the killed process")
	}
	owners, err := a.Owners()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := owners["victim"]; ok {
		t.Error("the killed allocation landed")
	}
	if owners["before"].Overlaps(owners["after"]) || len(owners) != 2 {
		t.Errorf("owners after the crash: %v", owners)
	}
	if stale, _ := filepath.Glob(filepath.Join(dir, ".ranges-*.tmp")); len(stale) != 0 {
		t.Errorf("the dead writer's temporary file is still there: %v", stale)
	}
}

func TestFreeRange(t *testing.T) {
	size := uint32(PoolBlocks * BlockSize)
	r, err := FreeRange(nil, size)
	if err != nil || r.Start != 1<<31 || r.Size != size {
		t.Fatalf("empty files: %v %v", r, err)
	}
	taken := []SubIDEntry{
		{User: "alice", Range: Range{Start: 100000, Size: 65536}},
		{User: "kubelet", Range: Range{Start: 1 << 31, Size: 65536 * 10}},
	}
	r, err = FreeRange(taken, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range taken {
		if e.Range.Overlaps(r) {
			t.Errorf("%v overlaps %s's %v", r, e.User, e.Range)
		}
	}
	if r.Start%BlockSize != 0 {
		t.Errorf("%v not aligned", r)
	}
	// Everything above 2^31 taken: the search goes below it.
	full := append(taken, SubIDEntry{User: "x", Range: Range{Start: 1 << 31, Size: 1<<31 - 1}})
	if r, err = FreeRange(full, size); err != nil || r.End() > 1<<31 {
		t.Errorf("upper half taken: %v %v", r, err)
	}
	if _, err := FreeRange([]SubIDEntry{{User: "all", Range: Range{Start: 0, Size: 1<<32 - 1}}}, size); err == nil {
		t.Error("a full ID space gave a range")
	}
}

// TestLayerOwnersKeepTheirBlock: a writable layer's block survives a
// reboot and its container's delete; it is given back once the layer's
// directory is gone, at the next allocation for a new owner.
func TestLayerOwnersKeepTheirBlock(t *testing.T) {
	a, err := NewAllocator(t.TempDir(), []Range{{Start: 200000, Size: 3 * BlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(t.TempDir(), "upper")
	if err := os.Mkdir(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := LayerOwner(layer)
	first, err := a.Allocate(owner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate("pod"); err != nil {
		t.Fatal(err)
	}
	// Another boot: the pod's block is void, the layer's is not.
	data, err := os.ReadFile(a.statePath())
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := os.ReadFile(bootIDPath)
	data = []byte(strings.ReplaceAll(string(data), strings.TrimSpace(string(boot)), "00000000-0000-0000-0000-000000000000"))
	if err := os.WriteFile(a.statePath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := a.Allocate(owner)
	if err != nil || again != first {
		t.Fatalf("after a reboot the layer got %v (%v), want %v", again, err, first)
	}
	owners, _ := a.Owners()
	if _, ok := owners["pod"]; ok {
		t.Errorf("a container owner survived a reboot: %v", owners)
	}
	// The layer removed: its block goes back at the next call.
	if err := os.Remove(layer); err != nil {
		t.Fatal(err)
	}
	next, err := a.Allocate("another")
	if err != nil {
		t.Fatal(err)
	}
	owners, _ = a.Owners()
	if _, ok := owners[owner]; ok || next != first {
		t.Errorf("removed layer still owns a block (%v), new owner got %v, want %v", owners, next, first)
	}
}
