package shim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/sensor"
)

// sensorEscapes tries, for ten seconds (the sensor opens beside the first
// container, not before it), two things seccomp cannot see: a write to
// core_pattern (read-only /proc/sys: refused) and a binary dropped into
// /tmp and run (drift).
const sensorEscapes = `for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  echo '|/tmp/x' > /proc/sys/kernel/core_pattern 2>/dev/null
  cp /bin/busybox /tmp/dropped$i && /tmp/dropped$i true
  sleep 0.5
done; exec sleep 3600`

// TestSharedSensorTwoPods: two pods, each with its own shim, share the
// node's one sensor: both containers' attempts raise alerts attributed to
// them, one program is pinned for the state directory, and a pod's
// container is unwatched (its cgroup ID and record gone) once the pod is
// removed.
func TestSharedSensorTwoPods(t *testing.T) {
	w := startWard(t)
	var pods []harness.RunningPod
	for _, name := range []string{"sensor-a", "sensor-b"} {
		p, err := w.RunPod(harness.Pod{Name: name, Handler: "ward", Command: []string{"sh", "-c", sensorEscapes}})
		if err != nil {
			t.Fatalf("pod %s: %v", name, err)
		}
		pods = append(pods, p)
	}
	want := map[[2]string]bool{}
	for _, p := range pods {
		want[[2]string{p.ContainerID, "core-pattern"}] = false
		want[[2]string{p.ContainerID, "drift"}] = false
	}
	alerts := filepath.Join(w.StateDir, alert.FileName)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		done := true
		got, _ := harness.ReadAlerts(alerts)
		for _, a := range got {
			k := [2]string{fmt.Sprint(a.OutputFields["container.full_id"]), fmt.Sprint(a.OutputFields["ward.rule"])}
			if _, ok := want[k]; ok {
				want[k] = true
			}
		}
		for _, seen := range want {
			done = done && seen
		}
		if done {
			break
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no %s alert for container %s", k[1], k[0])
		}
	}

	// One program for the state directory, shared by both shims.
	var mine []sensor.Pinned
	pins, err := sensor.ListPinned()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.StateDir == w.StateDir {
			mine = append(mine, p)
		}
	}
	if len(mine) != 1 || !mine[0].Current {
		t.Fatalf("pinned for %s: %+v, want this build's program once", w.StateDir, mine)
	}
	s, err := sensor.Open(sensor.SharedOptions{StateDir: w.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Loaded {
		t.Fatal("the test loaded a second copy: the shims did not pin theirs")
	}
	cgA := recordOf(t, w.StateDir, pods[0].ContainerID)
	cgB := recordOf(t, w.StateDir, pods[1].ContainerID)
	if ids, _ := s.Watched(); !slices.Contains(ids, cgA) || !slices.Contains(ids, cgB) {
		t.Fatalf("watched %v, want %d and %d", ids, cgA, cgB)
	}
	if err := w.RemovePod(pods[0].SandboxID); err != nil {
		t.Fatal(err)
	}
	ids, _ := s.Watched()
	if slices.Contains(ids, cgA) || !slices.Contains(ids, cgB) {
		t.Errorf("after removing pod a, watched %v: want %d gone and %d kept", ids, cgA, cgB)
	}
	if _, err := s.Meta(cgA); err == nil {
		t.Errorf("pod a's container's record is still there")
	}
}

// recordOf is the cgroup ID the shared sensor's record gives a container.
func recordOf(t *testing.T, stateDir, containerID string) uint64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(stateDir, "sensor", "containers", "*.json"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var r struct {
			ID   uint64 `json:"id"`
			Meta struct {
				Container struct{ ID string } `json:"container"`
			} `json:"meta"`
		}
		if json.Unmarshal(data, &r) == nil && r.Meta.Container.ID == containerID {
			return r.ID
		}
	}
	t.Fatalf("no sensor record for container %s among %v", containerID, files)
	return 0
}
