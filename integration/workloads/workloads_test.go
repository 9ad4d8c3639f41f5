// Package workloads_test runs real Debian 12 software (an mmdebstrap-built
// root filesystem) under runc and under ward's defaults, through every
// front door (Docker, Podman, containerd's CRI as a kubelet drives it), the
// same image and command on both runtimes: services and their operations
// from exec sessions, build jobs, image builds, commits and copies with
// their layers' ownership, volumes, non-root and read-only containers. The
// checks are one table for all doors (checks_test.go); a door lacking an
// operation (a pod is not committed) leaves the check out there. Every
// check that passes under runc must pass under ward, unless listed in
// deliberate with its reason (docs/defaults.md), or in open (a known gap
// with the fix it waits for; reported, not failed).
//
// It is slow (the root filesystem takes minutes to build the first time,
// then is cached; importing it takes about a minute per daemon), so it
// runs in `make test-workloads`, not `make test-integration`: it skips
// unless WARD_WORKLOADS=1. WARD_WORKLOADS_DOOR picks doors
// (docker,podman,cri: all by default), WARD_WORKLOADS_RUN checks (a
// substring of their names).
package workloads_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/alert"
)

func TestWorkloads(t *testing.T) {
	if os.Getenv("WARD_WORKLOADS") != "1" {
		t.Skip("real-workload corpus: set WARD_WORKLOADS=1 (make test-workloads)")
	}
	harness.Require(t)
	doors := os.Getenv("WARD_WORKLOADS_DOOR")
	if doors == "" {
		doors = "docker,podman,cri"
	}
	tarball := rootfsTar(t)
	var report strings.Builder
	for _, name := range strings.Split(doors, ",") {
		t.Run(name, func(t *testing.T) {
			var pair [2]door
			switch name {
			case "docker":
				pair = [2]door{startDockerd(t, "runc", tarball), startDockerd(t, "ward", tarball)}
			case "podman":
				pair = [2]door{startPodman(t, "runc", tarball), startPodman(t, "ward", tarball)}
			case "cri":
				r, w := startCRI(t, tarball)
				pair = [2]door{r, w}
			default:
				t.Fatalf("WARD_WORKLOADS_DOOR: unknown door %q (docker, podman, cri)", name)
			}
			report.WriteString(compare(t, pair))
		})
	}
	if out := os.Getenv("WARD_WORKLOADS_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// compare runs every check on the runc door and the ward door of one front
// door and returns the result table; a check that passes under runc and
// fails under ward fails t unless it is deliberate or open.
func compare(t *testing.T, pair [2]door) string {
	only := os.Getenv("WARD_WORKLOADS_RUN")
	outcome := map[string][2]error{}
	alertFile := alertsOf(pair[1].decisionLog())
	noticeFile := filepath.Join(filepath.Dir(alertFile), alert.NoticeFileName)
	raised, noticed := map[string][]string{}, map[string][]string{}
	all := slices.Concat(checks, driftChecks)
	for _, c := range all {
		if only != "" && !strings.Contains(c.name, only) {
			continue
		}
		var o [2]error
		for i, d := range pair {
			before, beforeNotices := countAlerts(t, alertFile), countAlerts(t, noticeFile)
			o[i] = c.run(d)
			d.removeAll()
			if o[i] != nil && !errors.Is(o[i], errNotHere) {
				t.Logf("%s on %s/%s: %v", c.name, d.doorName(), d.runtime(), o[i])
			}
			if i == 1 {
				time.Sleep(alertSettle)
				raised[c.name] = newAlerts(t, alertFile, before)
				noticed[c.name] = newAlerts(t, noticeFile, beforeNotices)
			}
		}
		outcome[c.name] = o
	}
	checkAlerts(t, raised)
	var table strings.Builder
	door := pair[0].doorName()
	fmt.Fprintf(&table, "\n%s:\n\n| check | runc | ward | ward's alerts | ward's notices | note |\n|---|---|---|---|---|---|\n", door)
	var runc, ward, notHere, deliberateN, openN int
	mark := func(err error) string {
		switch {
		case err == nil:
			return "pass"
		case errors.Is(err, errNotHere):
			return "n/a"
		}
		return "FAIL"
	}
	for _, c := range all {
		o, ok := outcome[c.name]
		if !ok {
			continue
		}
		if errors.Is(o[0], errNotHere) {
			notHere++
			fmt.Fprintf(&table, "| %s | n/a | n/a | | | no such operation on %s |\n", c.name, door)
			continue
		}
		if o[0] == nil {
			runc++
		}
		if o[1] == nil {
			ward++
		}
		note := ""
		if o[0] == nil && o[1] != nil {
			if why, ok := deliberate[c.name]; ok {
				deliberateN++
				note = "deliberate: " + why
			} else if why, ok := open[c.name]; ok {
				openN++
				note = "open: " + why
				t.Logf("%s: open, not yet fixed: %s", c.name, why)
			} else {
				note = "ward breaks it"
				t.Errorf("%s (%s): passes under runc, fails under ward on %s: %v", c.name, c.what, door, o[1])
			}
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %s | %s |\n", c.name, mark(o[0]), mark(o[1]),
			strings.Join(raised[c.name], " "), strings.Join(noticed[c.name], " "), note)
	}
	summary := fmt.Sprintf("%s: %d checks here (%d not on this door): runc passes %d, ward %d; ward fails %d deliberate, %d open",
		door, len(outcome)-notHere, notHere, runc, ward, deliberateN, openN)
	t.Logf("%s\n%s", summary, table.String())
	// The comparison means something only if ward hardened the containers.
	if log, err := os.ReadFile(pair[1].decisionLog()); err != nil || !strings.Contains(string(log), `"action":"harden"`) {
		t.Errorf("ward's decision log %s shows no hardened container (%v)", pair[1].decisionLog(), err)
	}
	return summary + "\n" + table.String()
}

// alertsOf is the alert file of the ward door whose decision log is
// decisionLog: wardConfig puts both under one directory.
func alertsOf(decisionLog string) string {
	return filepath.Join(filepath.Dir(decisionLog), "ward-state", alert.FileName)
}

// alertSettle is how long a check's alerts are waited for after its
// containers are gone: the sensor's reader raises them from its ring
// buffer, shortly after the fact.
const alertSettle = time.Second

// countAlerts is how many alerts the file holds.
func countAlerts(t *testing.T, path string) int {
	as, err := harness.ReadAlerts(path)
	if err != nil {
		t.Error(err)
	}
	return len(as)
}

// newAlerts are the rule IDs of the alerts (or notices) in path after the
// first n.
func newAlerts(t *testing.T, path string, n int) []string {
	as, err := harness.ReadAlerts(path)
	if err != nil {
		t.Error(err)
	}
	var rules []string
	for _, a := range as[min(n, len(as)):] {
		rules = append(rules, fmt.Sprint(a.OutputFields["ward.rule"]))
		t.Logf("%s: %s (writer %v, provenance %v)", filepath.Base(path), a.Output, a.OutputFields["ward.drift.writer"], a.OutputFields["ward.drift.provenance"])
	}
	return rules
}

// checkAlerts fails t for an alert raised by a benign check (issue 16:
// the benign corpus raises none) and for a check of wantAlerts that did
// not raise its rules.
func checkAlerts(t *testing.T, raised map[string][]string) {
	for name, rules := range raised {
		want, ok := wantAlerts[name]
		if !ok {
			if len(rules) > 0 {
				t.Errorf("%s: a benign check raised alerts under ward: %v", name, rules)
			}
			continue
		}
		for _, r := range want {
			if !slices.Contains(rules, r) {
				t.Errorf("%s: want a %s alert under ward, got %v", name, r, rules)
			}
		}
	}
}
