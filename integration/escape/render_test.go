package escape_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/escape/probes"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/policy"
)

// TestRenderReport: totals count only the shapes a runtime ran, a refused
// shape shows the refusal with ward's rule, reason and findings, and a
// broken benign workload shows as broken. (No root, no runtimes.)
func TestRenderReport(t *testing.T) {
	all := map[string]probes.Outcome{}
	for i, p := range probes.All() {
		res := probes.Blocked
		if i == 0 {
			res = probes.Escaped
		}
		all[p.ID] = probes.Outcome{ID: p.ID, Result: res, Detail: "d|etail"}
	}
	reject := &decisionlog.Entry{Event: "create", Report: judge.Report{Action: policy.Reject, Backend: policy.Runc, Rule: "reject-host-takeover",
		Reason: "hands over the host", Findings: []judge.ReportFinding{{ID: "privileged"}, {ID: "host-pid", Waived: "x"}}}}
	runs := []run{
		{Shape: "privileged", Runtime: "runc", Outcomes: all},
		{Shape: "privileged", Runtime: "ward", Err: "ward rejected", Decision: reject},
	}
	benign := []benignCheck{{Runtime: "ward", Name: "server", Err: errors.New("no answer")}, {Runtime: "runc", Name: "server"}}
	doc := renderReport(runs, benign, map[string]string{"runc": "runc 1.4.4"}, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	for _, want := range []string{
		"on 2026-01-02 03:04 UTC",
		"runc `runc 1.4.4`",
		"| runc | 1 | 0 | 29 | 0 | 1 |",
		"| ward | 0 | 1 | 0 | 0 | 0 |",
		"**reject (rule reject-host-takeover)**, pod refused: hands over the host; findings: privileged |",
		`ESCAPED: d\|etail | refused |`,
		"| server | works | BROKEN: no answer | not run |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestHostStateDiff: a changed, added or removed key is reported; equal
// snapshots are not.
func TestHostStateDiff(t *testing.T) {
	a := hostState{"core_pattern": "core", "mounts": "m"}
	if d := a.diff(hostState{"core_pattern": "core", "mounts": "m"}); len(d) != 0 {
		t.Errorf("equal snapshots differ: %v", d)
	}
	d := a.diff(hostState{"core_pattern": "|/evil", "extra": "x"})
	if len(d) != 3 || !strings.Contains(strings.Join(d, "\n"), `core_pattern: before "core", after "|/evil"`) {
		t.Errorf("diff: %v", d)
	}
}
