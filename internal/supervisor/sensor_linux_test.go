package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/sensor"
	"github.com/ward-runtime/ward/policy"
)

// sensorContainer makes a cgroup v2 directory with a sleeping process in
// it: a container as the sensor sees one.
func sensorContainer(t *testing.T, id string) (Container, string) {
	t.Helper()
	h, err := freezer.HostUnified()
	if err != nil {
		t.Fatal(err)
	}
	rel := fmt.Sprintf("/ward-sup-sensor-%d-%s", os.Getpid(), id)
	dir := filepath.Join(h.Root, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	det := policy.Detection{Enabled: true, Mode: policy.DetectEnforce}
	return Container{Container: alert.Container{ID: id, PodName: "pod-" + id}, PID: cmd.Process.Pid, CgroupsPath: rel,
		Detection: func() policy.Detection { return det }}, dir
}

// attempt opens core_pattern for writing (and writes nothing) in dir.
func attempt(t *testing.T, dir string) {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("/bin/sh", "-c", "exec 3>>/proc/sys/kernel/core_pattern")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

// corePatternFor waits for sink's core-pattern alert about container id.
func corePatternFor(sink *memSink, id string, wait time.Duration) bool {
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sink.mu.Lock()
		lines := sink.lines
		sink.mu.Unlock()
		for _, l := range lines {
			if a, err := alert.Parse(l); err == nil && a.OutputFields["container.full_id"] == id && a.OutputFields["ward.rule"] == "core-pattern" {
				return true
			}
		}
	}
	return false
}

// TestSensorsShareOneReader: two supervisors (two pods' shims) share one
// sensor; the one reader raises both containers' alerts with their own
// attribution; when the reader's supervisor closes, the other takes over;
// a removed container's cgroup is unwatched.
func TestSensorsShareOneReader(t *testing.T) {
	needRoot(t)
	state := t.TempDir()
	t.Cleanup(func() { sensor.RemoveInstance(state) })
	limits := alert.Limits{Dedup: time.Nanosecond, Burst: 1000, Window: time.Second}
	sinks := []*memSink{{}, {}}
	sups := []*Sensors{
		{Alerts: alert.NewDispatcher([]alert.Sink{sinks[0]}, limits), Logf: t.Logf, StateDir: state},
		{Alerts: alert.NewDispatcher([]alert.Sink{sinks[1]}, limits), Logf: t.Logf, StateDir: state},
	}
	ca, dirA := sensorContainer(t, "a")
	cb, dirB := sensorContainer(t, "b")
	for i, c := range []Container{ca, cb} {
		sups[i].Start()
		sups[i].Add(c)
		t.Cleanup(func() { sups[i].Close() })
	}
	// Both watched (the sensor opens in the background).
	records := filepath.Join(state, "sensor", "containers", "*.json")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m, _ := filepath.Glob(records); len(m) == 2 {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // a reader elected
	attempt(t, dirA)
	attempt(t, dirB)
	reader := -1
	for i, s := range sinks {
		if corePatternFor(s, "a", 3*time.Second) && corePatternFor(s, "b", time.Second) {
			reader = i
		}
	}
	if reader < 0 {
		t.Fatalf("no one sink has both containers' alerts: %d and %d", len(sinks[0].alerts(t)), len(sinks[1].alerts(t)))
	}
	other := 1 - reader
	if n := len(sinks[other].alerts(t)); n != 0 {
		t.Errorf("two readers: the other supervisor raised %d alerts", n)
	}

	// The reader's supervisor ends (its container with it): the other
	// takes over and raises its own container's alert.
	sups[reader].Close()
	otherID, otherDir := "b", dirB
	if other == 0 {
		otherID, otherDir = "a", dirA
	}
	time.Sleep(200 * time.Millisecond)
	attempt(t, otherDir)
	if !corePatternFor(sinks[other], otherID, 5*time.Second) {
		t.Fatal("no takeover: the remaining supervisor raised nothing")
	}
	if m, _ := filepath.Glob(records); len(m) != 1 {
		t.Errorf("records after the reader's supervisor closed: %v, want the other's only", m)
	}
	sups[other].Remove(otherID)
	if m, _ := filepath.Glob(records); len(m) != 0 {
		t.Errorf("records after Remove: %v", m)
	}
	s, err := sensor.Open(sensor.SharedOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids, _ := s.Watched(); len(ids) != 0 {
		t.Errorf("cgroups still watched after both containers ended: %v", ids)
	}
}

// TestSensorsWithoutSensor: where the shared sensor cannot open (here its
// state directory cannot be made), one warning says so, nothing waits for
// it, and Close returns.
func TestSensorsWithoutSensor(t *testing.T) {
	needRoot(t)
	var mu sync.Mutex
	var logs []string
	ss := &Sensors{Alerts: alert.NewDispatcher(nil, alert.Limits{}), StateDir: "/proc/ward-no-such-state",
		Logf: func(f string, a ...any) { mu.Lock(); defer mu.Unlock(); logs = append(logs, fmt.Sprintf(f, a...)) }}
	ss.Start()
	c, _ := sensorContainer(t, "nosensor")
	ss.Add(c)
	done := make(chan error, 1)
	go func() { done <- ss.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(closeWait + 5*time.Second):
		t.Fatal("Close did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) != 1 || !strings.Contains(logs[0], "the seccomp supervisor still is") {
		t.Errorf("logs %q, want one warning that the supervisor still runs", logs)
	}
}

// TestDriftBuildArtefactIsANotice: a binary the image's toolchain built
// and the container ran is a notice (counted, in the notice file), not an
// alert; the same under ward.dev/drift: strict, and a binary cp wrote,
// are drift alerts; the notice keeps its own quiet period, so it never
// silences the drift of a dropped binary.
func TestDriftBuildArtefactIsANotice(t *testing.T) {
	alerts, notices := &memSink{}, &memSink{}
	d := alert.NewDispatcher([]alert.Sink{alerts}, alert.Limits{Dedup: time.Nanosecond, Burst: 100, Window: time.Second})
	d.NoticesTo(notices)
	ss := &Sensors{Alerts: d, Logf: t.Logf}
	built := sensor.Event{Target: sensor.Drift, Kind: sensor.KindExecWritten, Path: "./a", File: "/tmp/a",
		Writer: "x86_64-linux-gnu-ld.bfd", WriterFlags: sensor.WriterImage | sensor.WriterToolchain, Pid: 1, Comm: "a"}
	copied := sensor.Event{Target: sensor.Drift, Kind: sensor.KindExecWritten, Path: "/tmp/x", File: "/tmp/x",
		Writer: "cp", WriterFlags: sensor.WriterImage, Pid: 1, Comm: "x"}
	c := Container{Container: alert.Container{ID: "c1"}}
	ss.raise(c, built, 41)
	if len(alerts.lines) != 0 || len(notices.lines) != 1 {
		t.Fatalf("build artefact: %d alerts, %d notices; want 0 and 1", len(alerts.lines), len(notices.lines))
	}
	n, err := alert.Parse(notices.lines[0])
	if err != nil {
		t.Fatal(err)
	}
	f := n.OutputFields
	if n.Priority != alert.PriorityInformational || f["ward.count"] != "42" || f["ward.drift.provenance"] != "toolchain" ||
		f["ward.drift.writer"] != "x86_64-linux-gnu-ld.bfd" || f["ward.notice"] != true {
		t.Errorf("notice: %s %v", n.Priority, f)
	}
	ss.raise(c, copied, 0)
	// The strict opt-in crosses processes in the sensor's record (the
	// reader may be another container's supervisor).
	strict := c
	strict.StrictDrift = true
	meta, err := json.Marshal(RecordOf(strict))
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(meta, &rec); err != nil || !rec.Unpack().StrictDrift {
		t.Fatalf("the record loses the strict opt-in: %s %v", meta, err)
	}
	ss.raise(rec.Unpack(), built, 0)
	if len(alerts.lines) != 2 || len(notices.lines) != 1 {
		t.Fatalf("dropped binary and strict build artefact: %d alerts, %d notices; want 2 and 1", len(alerts.lines), len(notices.lines))
	}
	for i, want := range []string{"image", "toolchain"} {
		a, err := alert.Parse(alerts.lines[i])
		if err != nil {
			t.Fatal(err)
		}
		if a.Priority != alert.PriorityCritical || a.OutputFields["ward.rule"] != "drift" || a.OutputFields["ward.drift.provenance"] != want {
			t.Errorf("alert %d: %s %v", i, a.Priority, a.OutputFields)
		}
	}
}
