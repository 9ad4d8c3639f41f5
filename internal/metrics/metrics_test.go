package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/metrics"
	"github.com/ward-runtime/ward/policy"
)

// entries of each shape a front door writes.
var (
	harden = decisionlog.Entry{Door: "shim", Event: "create", DurationSeconds: 0.002, Report: judge.Report{
		Action: policy.Harden, Backend: policy.Runc,
		Findings: []judge.ReportFinding{{ID: "cap-net-raw", Severity: policy.Medium}, {ID: "run-as-root", Severity: policy.Low, Waived: "x"}}}}
	reject = decisionlog.Entry{Door: "runtime", Event: "create", DurationSeconds: 0.004, Report: judge.Report{
		Action: policy.Reject, Backend: policy.Runc, Rule: "reject-host-takeover",
		Findings: []judge.ReportFinding{{ID: "privileged", Severity: policy.Critical}}}}
	auditReject = decisionlog.Entry{Door: "shim", Event: "create", DurationSeconds: 0.003, Report: judge.Report{
		Action: policy.Reject, Backend: policy.Runc, Rule: "reject-host-takeover", Audit: true}}
	unknownPod = decisionlog.Entry{Door: "shim", Event: "create", Error: "ward refused container c: ward has no decision for its pod sandbox s",
		ErrorKind: "unknown-pod", DurationSeconds: 0.0001}
	execForbidden = decisionlog.Entry{Door: "shim", Event: "exec", Error: "ward refused exec in c: cwd", ErrorKind: "forbidden",
		DurationSeconds: 0.0002, Report: judge.Report{Action: policy.Harden, Backend: policy.Runc,
			Findings: []judge.ReportFinding{{ID: "cap-net-raw", Severity: policy.Medium}}}}
	loadFailure = decisionlog.Entry{Door: "runtime", Event: "load", Error: "loading policy: bad", ErrorKind: "policy"}
)

// scrape serves m over HTTP and parses the text format back.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the sample of family name whose labels include want, summed
// over the series that match (0 when none does); for a histogram, its
// count.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func newMetrics(t *testing.T, logs ...string) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(metrics.Config{Logs: logs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func write(t *testing.T, l *decisionlog.Log, es ...decisionlog.Entry) {
	t.Helper()
	for _, e := range es {
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCountsFromTheLog: lines the front doors' writer appends, followed
// and served, parsed back with Prometheus's own text parser.
func TestCountsFromTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := decisionlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Already in the log at start: not counted (the default).
	write(t, l, harden)
	m := newMetrics(t, filepath.Join(filepath.Dir(path), "*.jsonl"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	// Run's first poll is immediate; give it a moment to open the file
	// at its end before writing (the assertions do not depend on time:
	// cancel reads everything written before it).
	waitFiles(t, m, 1)
	write(t, l, harden, harden, reject, auditReject, unknownPod, execForbidden, loadFailure)
	os.WriteFile(path+".bad", nil, 0o644) // not matching *.jsonl: ignored
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not json\n")
	f.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ward_decisions_total", nil, 6},
		{"ward_decisions_total", map[string]string{"door": "shim", "event": "create", "action": "harden", "backend": "runc", "audit": "false"}, 2},
		{"ward_decisions_total", map[string]string{"action": "reject", "rule": "reject-host-takeover", "audit": "true"}, 1},
		{"ward_decisions_total", map[string]string{"action": "error"}, 2},
		{"ward_rejections_total", map[string]string{"door": "runtime", "rule": "reject-host-takeover"}, 1},
		{"ward_rejections_total", nil, 1},
		{"ward_findings_total", map[string]string{"finding": "cap-net-raw", "severity": "medium", "action": "harden", "waived": "false"}, 2},
		{"ward_findings_total", map[string]string{"finding": "run-as-root", "waived": "true"}, 2},
		{"ward_findings_total", map[string]string{"finding": "privileged", "severity": "critical", "action": "reject"}, 1},
		{"ward_fail_closed_total", map[string]string{"door": "shim", "event": "create", "kind": "unknown-pod"}, 1},
		{"ward_fail_closed_total", map[string]string{"event": "exec", "kind": "forbidden"}, 1},
		{"ward_policy_load_failures_total", map[string]string{"door": "runtime"}, 1},
		{"ward_decision_duration_seconds", nil, 6},
		{"ward_decision_duration_seconds", map[string]string{"door": "runtime", "action": "reject"}, 1},
		{"ward_log_entries_total", nil, 7},
		{"ward_log_read_problems_total", map[string]string{"kind": "malformed"}, 1},
		{"ward_log_files", nil, 1},
		{"ward_build_info", nil, 1},
	} {
		if got := value(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The histogram's sum is the entries' durations.
	h := fams["ward_decision_duration_seconds"]
	var sum float64
	for _, m := range h.Metric {
		sum += m.Histogram.GetSampleSum()
	}
	if want := 0.002*2 + 0.004 + 0.003 + 0.0001 + 0.0002; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("duration sum %v, want %v", sum, want)
	}
}

func waitFiles(t *testing.T, m *metrics.Metrics, n float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if value(scrape(t, m), "ward_log_files", nil) == n {
			return
		}
	}
	t.Fatalf("the follower did not open %v files", n)
}

// TestRotationLosesNothing: logrotate's three ways (rename, remove,
// copytruncate) in the middle of a stream, with the writer reopening as
// the shims do, and a late write into the renamed file; every entry is
// counted once. The follower is stepped by hand, so nothing depends on
// timing.
func TestRotationLosesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	l, err := decisionlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := newMetrics(t, filepath.Join(dir, "*.jsonl"))
	n := 0
	fl := decisionlog.Follower{Patterns: []string{filepath.Join(dir, "*.jsonl")}, Entry: func(e decisionlog.Entry) { n++; m.Observe(e) }}
	fl.Scan(true)
	step := func(name string, want int) {
		t.Helper()
		fl.Scan(false)
		if n != want {
			t.Fatalf("after %s: %d entries, want %d", name, n, want)
		}
	}
	write(t, l, harden, harden, harden)
	step("three writes", 3)

	// rename (logrotate's default): the writer reopens at its next write;
	// one entry lands between the rename and the follower's next poll.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	late, _ := os.OpenFile(path+".1", os.O_APPEND|os.O_WRONLY, 0)
	write(t, l, reject, reject)
	step("rename", 5)
	// A writer that checked the path just before the rename writes to
	// the old file after the follower noticed: still counted.
	if _, err := late.WriteString(`{"door":"shim","event":"create","action":"harden","backend":"runc"}` + "\n"); err != nil {
		t.Fatal(err)
	}
	late.Close()
	write(t, l, harden)
	step("late write into the renamed file", 7)

	// remove, then the writer creates the file again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write(t, l, harden, reject)
	step("remove", 9)

	// copytruncate: the content was copied away, the file truncated in
	// place; the writer appends at the new end.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write(t, l, harden)
	step("truncate", 10)

	// A line written in two pieces (a writer's write cut short by a
	// concurrent read) is one entry.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"door":"shim","event":"create",`)
	step("half a line", 10)
	f.WriteString(`"action":"reject","backend":"runc","rule":"r"}` + "\n")
	f.Close()
	step("the rest of the line", 11)

	fams := scrape(t, m)
	if got := value(fams, "ward_decisions_total", nil); got != 11 {
		t.Errorf("ward_decisions_total = %v, want 11", got)
	}
	if got := value(fams, "ward_rejections_total", nil); got != 4 {
		t.Errorf("ward_rejections_total = %v, want 4", got)
	}
}

// TestFromStart counts what the logs held before the daemon started.
func TestFromStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, _ := decisionlog.Open(path)
	write(t, l, harden, reject)
	l.Close()
	m, err := metrics.New(metrics.Config{Logs: []string{path}, FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := value(scrape(t, m), "ward_decisions_total", nil); got != 2 {
		t.Errorf("ward_decisions_total = %v, want 2", got)
	}
}

func TestBadPatterns(t *testing.T) {
	for _, logs := range [][]string{nil, {"/var/log/ward/[.jsonl"}} {
		if _, err := metrics.New(metrics.Config{Logs: logs}); err == nil {
			t.Errorf("New(%q): no error", logs)
		} else if !strings.Contains(err.Error(), "decision log") {
			t.Errorf("New(%q): %v does not say what is wrong", logs, err)
		}
	}
}
