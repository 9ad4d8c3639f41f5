package escape_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/escape/probes"
	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/alert"
)

// receiver is an HTTP endpoint that takes alerts as Falcosidekick's root
// endpoint does, and checks what Falcosidekick requires of each: output,
// priority, rule, time (RFC 3339) and output_fields.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []alert.Alert
	errors []string
}

func startReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := falcosidekickAccepts(req, body); err != nil {
			r.errors = append(r.errors, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a, _ := alert.Parse(body)
		r.got = append(r.got, a)
	}))
	t.Cleanup(r.Close)
	return r
}

func falcosidekickAccepts(req *http.Request, body []byte) error {
	if req.Method != http.MethodPost || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("%s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	for _, k := range []string{"output", "priority", "rule", "time", "output_fields"} {
		if len(m[k]) == 0 || string(m[k]) == `""` || string(m[k]) == "null" {
			return fmt.Errorf("no %s", k)
		}
	}
	var ts string
	if err := json.Unmarshal(m["time"], &ts); err != nil {
		return fmt.Errorf("time: %v", err)
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return fmt.Errorf("time %q: %v", ts, err)
	}
	var fields map[string]any
	if err := json.Unmarshal(m["output_fields"], &fields); err != nil {
		return fmt.Errorf("output_fields: %v", err)
	}
	return nil
}

func (r *receiver) alerts() ([]alert.Alert, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got), slices.Clone(r.errors)
}

// expectedAlerts maps each probe that attempts a call ward's baseline
// refuses to the detection rule it raises and an ATT&CK id that rule
// carries.
var expectedAlerts = map[string]struct{ rule, attack string }{
	"mount":           {"mount", "T1611"},
	"open-by-handle":  {"open-by-handle", "T1611"},
	"bpf":             {"bpf", "T1611"},
	"userns-unshare":  {"userns", "T1611"},
	"keyctl":          {"keyring", "T1611"},
	"perf-event-open": {"perf", "T1068"},
	"userfaultfd":     {"userfaultfd", "T1068"},
	"io-uring":        {"io-uring", "T1068"},
	"kernel-module":   {"module", "T1547.006"},
	"kexec":           {"kernel", "T1611"},
}

// TestDetectionAlerts runs the escape probes in an ordinary pod on the
// ward handler: every probe that attempts a notified call raises its
// alert (rule, ATT&CK id, container, pod and ward's decision), within a
// second, in the alert file and at the HTTP receiver; the probes' outcomes
// are what they are without the supervisor (the baseline's EPERM); then
// the benign workloads raise none.
func TestDetectionAlerts(t *testing.T) {
	harness.Require(t)
	s := startSuite(t)
	start := time.Now()
	// The probes see the baseline's answer, as before the supervisor.
	r := s.runBlocked(t, ordinaryShape())
	all := checkProbeAlerts(t, s, r, "ordinary-ward", start)
	t.Logf("%d alerts for %d probes in %s", len(all), len(expectedAlerts), time.Since(start).Round(time.Millisecond))

	// The same alerts reached the HTTP receiver, each one accepted.
	deadline := time.Now().Add(5 * time.Second)
	var got []alert.Alert
	var errs []string
	for ; time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, errs = s.receiver.alerts(); len(got)+len(errs) >= len(all) {
			break
		}
	}
	if len(errs) > 0 || len(got) != len(all) {
		t.Errorf("HTTP receiver: %d alerts accepted of %d, refused: %v", len(got), len(all), errs)
	}

	// Benign workloads: not one alert.
	before := len(harness.Alerts(t, s.alerts))
	for _, c := range s.benignOn(t, "ward") {
		if c.Err != nil {
			t.Errorf("benign workload broken: %s: %v", c.Name, c.Err)
		}
	}
	if after := harness.Alerts(t, s.alerts); len(after) != before {
		for _, a := range after[before:] {
			t.Errorf("benign workload raised %s: %s", a.Rule, a.Output)
		}
	}
}

// checkProbeAlerts checks that each probe of expectedAlerts raised its
// alert for pod (r's run), answered deny, naming ward's decision, and
// returns the alerts.
func checkProbeAlerts(t *testing.T, s *suite, r run, pod string, start time.Time) []alert.Alert {
	t.Helper()
	all := harness.Alerts(t, s.alerts)
	byRule := map[string]alert.Alert{}
	for _, a := range all {
		if a.OutputFields["k8s.pod.name"] != pod {
			t.Errorf("alert for another pod: %v", a.OutputFields["k8s.pod.name"])
			continue
		}
		byRule[fmt.Sprint(a.OutputFields["ward.rule"])] = a
	}
	for probe, want := range expectedAlerts {
		a, ok := byRule[want.rule]
		if !ok {
			t.Errorf("probe %s raised no %s alert", probe, want.rule)
			continue
		}
		f := a.OutputFields
		if !slices.Contains(a.Tags, want.attack) || f["k8s.ns.name"] == nil || f["container.name"] != "app" ||
			f["ward.decision.id"] != r.Decision.ID || f["ward.response"] != "deny" || f["proc.name"] == "" || a.Source != "syscall" {
			t.Errorf("probe %s: alert %s tags %v fields %v (decision %s)", probe, a.Rule, a.Tags, f, r.Decision.ID)
		}
		if lag := a.Time.Sub(start); lag < 0 {
			t.Errorf("probe %s: alert before the pod started", probe)
		}
	}
	return all
}

// TestDetectionAlertsRuntimeDefault: the same probes in an ordinary pod
// that asks for containerd's RuntimeDefault profile, which refuses most of
// those calls itself (EPERM). ward compiles the profile and composes it
// with its baseline, so every attempt still reaches the supervisor and
// raises its alert, and every probe still sees the refusal.
func TestDetectionAlertsRuntimeDefault(t *testing.T) {
	harness.Require(t)
	s := startSuite(t)
	rd := ordinaryShape()
	ordinary := rd.pod
	rd.ID = "runtime-default"
	rd.pod = func(p *harness.Pod, f fixtures) {
		ordinary(p, f)
		p.RuntimeDefault = true
	}
	start := time.Now()
	r := s.runBlocked(t, rd)
	all := checkProbeAlerts(t, s, r, "runtime-default-ward", start)
	t.Logf("%d alerts for %d probes under RuntimeDefault in %s", len(all), len(expectedAlerts), time.Since(start).Round(time.Millisecond))
}

func ordinaryShape() shape {
	for _, sh := range shapes() {
		if sh.ID == "ordinary" {
			return sh
		}
	}
	panic("no ordinary shape")
}

// runBlocked runs sh's pod on the ward handler and checks that every
// probe of expectedAlerts was blocked.
func (s *suite) runBlocked(t *testing.T, sh shape) run {
	t.Helper()
	r := s.runShape(t, sh, "ward")
	if !r.admitted() {
		t.Fatalf("%s pod refused: %s", sh.ID, r.Err)
	}
	for id := range expectedAlerts {
		if o, ok := r.Outcomes[id]; ok && o.Result != probes.Blocked {
			t.Errorf("probe %s: %s (%s), want blocked", id, o.Result, o.Detail)
		}
	}
	return r
}
