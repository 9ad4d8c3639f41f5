package admission

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/policy"
)

// ExecRequest is one process to start in a running container.
type ExecRequest struct {
	// ID is the container's; ExecID the session's, where the transport
	// has one (the task API does, runc's command line does not).
	ID, ExecID string
	// Bundle is the container's bundle, for the log.
	Bundle string
	// Process is the process asked for; AdmitExec rewrites it in place.
	Process *specs.Process
	// Container is the report of the container's own decision, as the
	// front door kept it from its Admission.
	Container judge.Report
}

// AdmitExec judges an exec session against its container's decision: it
// refuses the escape shapes and gives the process the container's
// process-level hardening. The decision-log entry carries the container's
// report with the session's changes. An error is an *Error: the session
// must not start.
func (a *Admitter) AdmitExec(r ExecRequest) ([]harden.Change, error) {
	start := time.Now()
	c := &r.Container
	d := policy.Decision{Action: c.Action, Backend: c.Backend, Rule: c.Rule, Audit: c.Audit, Skip: c.Skipped}
	changes, err := a.judge.Process(r.Process, &d, c.UnderLauncher())
	id := r.ID
	if r.ExecID != "" {
		id += "/" + r.ExecID
	}
	report := *c
	report.Changes, report.Notes = changes, nil
	entry := decisionlog.Entry{Event: "exec", ContainerID: id, Bundle: r.Bundle, Report: report}
	if err != nil {
		err = &Error{Kind: Forbidden, ContainerID: r.ID, Exec: true, Err: err}
		entry.Error, entry.ErrorKind = err.Error(), Forbidden.String()
	}
	entry.DurationSeconds = time.Since(start).Seconds()
	if lerr := a.record(&entry); lerr != nil && err == nil {
		err = &Error{ContainerID: r.ID, Exec: true, Err: lerr}
	}
	if err != nil {
		return nil, err
	}
	return changes, nil
}
