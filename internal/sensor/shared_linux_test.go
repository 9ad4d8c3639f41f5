package sensor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// openShared opens the shared sensor of stateDir as a supervisor would,
// and unpins the test's instance at the end.
func openShared(t *testing.T, stateDir string) *Shared {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	s, err := Open(SharedOptions{StateDir: stateDir, Mount: true})
	if err != nil {
		t.Fatalf("opening the shared sensor on this kernel: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		RemoveInstance(stateDir)
	})
	return s
}

// TestSharedSensor: two supervisors of one state directory share one
// pinned program: the second finds it pinned, each watches its own
// cgroup, the one reader sees both, a second reader takes over when the
// first lets go, and a cgroup that ended is swept.
func TestSharedSensor(t *testing.T) {
	state := t.TempDir()
	a := openShared(t, state)
	b := openShared(t, state)
	if !a.Loaded || b.Loaded {
		t.Fatalf("loaded: first %v, second %v; want only the first", a.Loaded, b.Loaded)
	}
	if b.dir != a.dir || filepath.Base(a.dir) != Digest() {
		t.Fatalf("pin directories %s and %s", a.dir, b.dir)
	}
	dirA, _ := cgroupWith(t, "shared-a")
	dirB, _ := cgroupWith(t, "shared-b")
	idA, err := a.Watch(dirA, json.RawMessage(`{"who":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	idB, err := b.Watch(dirB, json.RawMessage(`{"who":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := a.Watched(); !slices.Contains(ids, idA) || !slices.Contains(ids, idB) {
		t.Fatalf("watched %v, want %d and %d", ids, idA, idB)
	}

	r, err := a.Lead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Only one reader: b's Lead waits until a's reader lets go.
	led := make(chan *Reader, 1)
	go func() {
		rb, err := b.Lead(context.Background())
		if err != nil {
			t.Error(err)
		}
		led <- rb
	}()
	select {
	case <-led:
		t.Fatal("a second reader while the first reads")
	case <-time.After(300 * time.Millisecond):
	}
	script := `exec 3>>/proc/sys/kernel/core_pattern; exec 3>&-`
	runIn(t, dirA, script)
	runIn(t, dirB, script)
	got := map[uint64]string{}
	for _, e := range collectFrom(r, 500*time.Millisecond) {
		meta, err := a.Meta(e.Cgroup)
		if err != nil {
			t.Fatalf("event from cgroup %d without a record: %v", e.Cgroup, err)
		}
		got[e.Cgroup] = string(meta)
	}
	if got[idA] != `{"who":"a"}` || got[idB] != `{"who":"b"}` || len(got) != 2 {
		t.Fatalf("events attributed %v", got)
	}

	r.Close()
	var rb *Reader
	select {
	case rb = <-led:
	case <-time.After(5 * time.Second):
		t.Fatal("no takeover after the reader closed")
	}
	defer rb.Close()
	runIn(t, dirA, script)
	if ev := collectFrom(rb, 500*time.Millisecond); len(ev) != 1 || ev[0].Cgroup != idA {
		t.Fatalf("after takeover: %v", ev)
	}

	// b's container ended and b died without Unwatch: Sweep removes it.
	if err := os.Remove(dirB); err != nil {
		t.Fatal(err)
	}
	gone, err := a.Sweep()
	if err != nil || !slices.Equal(gone, []uint64{idB}) {
		t.Fatalf("Sweep removed %v (%v), want [%d]", gone, err, idB)
	}
	if _, err := a.Meta(idB); err == nil {
		t.Error("the ended container's record is still there")
	}
	if err := a.Unwatch(idA); err != nil {
		t.Fatal(err)
	}
	if ids, _ := a.Watched(); len(ids) != 0 {
		t.Errorf("still watched after Unwatch: %v", ids)
	}
}

// TestSweepPins: an upgrade's load removes the older program nobody uses,
// and the pins of a state directory that is gone.
func TestSweepPins(t *testing.T) {
	state := t.TempDir()
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	g := openShared(t, gone)
	g.Close()
	os.RemoveAll(gone)
	// An older program of state's instance, with nobody using it.
	old := filepath.Join(instanceDir(state), "0000000000000000")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	s := openShared(t, state)
	if !s.Loaded {
		t.Fatal("not loaded")
	}
	for _, p := range []string{old, instanceDir(gone)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still pinned (%v)", p, err)
		}
	}
	pins, err := ListPinned()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(pins, func(p Pinned) bool { return p.Dir == s.dir && p.Current && !p.Orphan && p.StateDir == state }) {
		t.Errorf("ListPinned %+v lacks %s", pins, s.dir)
	}
}

// collectFrom reads r's events until none has come for quiet.
func collectFrom(r *Reader, quiet time.Duration) []Event {
	return collectEvents(r.Read, quiet)
}

// TestLeadTakeoverFromProcess: a supervisor waiting for the reader's role
// held by another process waits on that process's pidfd (it is recorded
// in the lock file) and takes over when the process dies.
func TestLeadTakeoverFromProcess(t *testing.T) {
	if os.Getenv("WARD_SENSOR_LEAD_CHILD") != "" {
		s, err := Open(SharedOptions{StateDir: os.Getenv("WARD_SENSOR_LEAD_CHILD"), Mount: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lead(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("leading\n")
		time.Sleep(time.Minute)
		return
	}
	state := t.TempDir()
	s := openShared(t, state)
	child := exec.Command(os.Args[0], "-test.run=^TestLeadTakeoverFromProcess$")
	child.Env = append(os.Environ(), "WARD_SENSOR_LEAD_CHILD="+state)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "leading\n" {
		t.Fatalf("child: %q", line)
	}
	lock := filepath.Join(s.state, s.digest+".reader")
	f, ok := holderPidfd(lock)
	if !ok {
		b, _ := os.ReadFile(lock)
		t.Fatalf("no pidfd of the reader from its lock file (%q)", b)
	}
	f.Close()
	led := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		r, err := s.Lead(ctx)
		if err == nil {
			r.Close()
		}
		led <- err
	}()
	select {
	case err := <-led:
		t.Fatalf("led while another process reads: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	killed := time.Now()
	child.Process.Kill()
	child.Wait()
	select {
	case err := <-led:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("took over %v after the reader died", time.Since(killed))
	case <-time.After(5 * time.Second):
		t.Fatal("no takeover after the reading process died")
	}
	// A wait is cancelled with its context.
	r, err := s.Lead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := s.Lead(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second Lead while this process reads: %v, want the context's error", err)
	}
}
