package response_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/alert"
)

// escapes tries, ten times over five seconds (the sensor loads beside the
// container, not before it), what seccomp cannot see: a write to
// core_pattern (read-only /proc/sys: refused), to the cgroups'
// notify_on_release (read-only cgroup mounts: refused; on a cgroup v2 node
// the unexpanded pattern, refused too), and a binary dropped into /tmp and
// run (drift).
const escapes = `for i in 1 2 3 4 5 6 7 8 9 10; do
  echo '|/tmp/x' > /proc/sys/kernel/core_pattern 2>/dev/null
  for f in /sys/fs/cgroup/*/notify_on_release; do echo 1 > $f; done 2>/dev/null
  cp /bin/busybox /tmp/dropped$i && /tmp/dropped$i true
  sleep 0.5
done; sleep 300`

// benign does what ordinary services do: write and read its own files,
// read kernel parameters, run its own programs.
const benign = `for i in 1 2 3 4 5 6 7 8 9 10; do
  echo hello > /tmp/f$i; cat /tmp/f$i > /dev/null; ls /proc/sys/kernel > /dev/null
  cat /proc/sys/kernel/core_pattern > /dev/null; /bin/true; sleep 0.5
done; sleep 300`

// sensorRuleIDs are the catalog rules the eBPF sensor raises.
var sensorRuleIDs = []string{"release-agent", "core-pattern", "sysrq", "proc-sys", "uevent-helper", "host-device", "drift"}

// TestSensorAlerts: through ward-runtime, a container that tries what
// seccomp cannot see raises the sensor's alerts, attributed to it; a
// benign one beside it raises none.
func TestSensorAlerts(t *testing.T) {
	e := newEnv(t)
	e.run("escaper", escapes)
	e.run("quiet", benign)

	want := map[string]bool{"core-pattern": false, "release-agent": false, "drift": false}
	var got []alert.Alert
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = alertsIn(filepath.Join(e.state, alert.FileName))
		done := true
		for rule := range want {
			want[rule] = slices.ContainsFunc(got, func(a alert.Alert) bool {
				return a.OutputFields["container.full_id"] == "escaper" && a.OutputFields["ward.rule"] == rule
			})
			done = done && want[rule]
		}
		if done {
			break
		}
	}
	for rule, seen := range want {
		if !seen {
			t.Errorf("no %s alert for the escaper", rule)
		}
	}
	for _, a := range got {
		rule, _ := a.OutputFields["ward.rule"].(string)
		if !slices.Contains(sensorRuleIDs, rule) {
			continue
		}
		t.Logf("%s %s: %v", a.Priority, a.Rule, a.OutputFields["fd.name"])
		if a.OutputFields["container.full_id"] != "escaper" {
			t.Errorf("sensor alert for %v: %s", a.OutputFields["container.full_id"], a.Output)
		}
		if rule == "core-pattern" && (a.OutputFields["fd.name"] != "/proc/sys/kernel/core_pattern" || !slices.Contains(a.Tags, "T1611") ||
			a.OutputFields["ward.response"] != "deny") {
			t.Errorf("core_pattern alert fields: %v", a.OutputFields)
		}
		if rule == "drift" && !strings.HasPrefix(a.OutputFields["proc.name"].(string), "dropped") {
			t.Errorf("drift alert names %v", a.OutputFields["proc.name"])
		}
	}
}

func alertsIn(path string) []alert.Alert {
	// A line being appended may not parse yet: read it next time.
	out, _ := harness.ReadAlerts(path)
	return out
}
