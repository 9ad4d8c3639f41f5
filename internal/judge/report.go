package judge

import (
	"slices"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/policy"
)

// Report is the stable, machine-readable form of a verdict: `ward explain
// --json` prints it and the decision logs embed it. Fields are only ever
// added.
type Report struct {
	Action  policy.Action  `json:"action"`
	Backend policy.Backend `json:"backend"`
	Audit   bool           `json:"audit"`
	Rule    string         `json:"rule,omitempty"`
	Reason  string         `json:"reason"`
	Matched []string       `json:"matchedRules,omitempty"`
	// Deciding lists the IDs of the findings that decided (policy.Decision).
	Deciding   []string          `json:"decidingFindings,omitempty"`
	Findings   []ReportFinding   `json:"findings"`
	Exemptions []ReportExemption `json:"exemptions,omitempty"`
	Skipped    []string          `json:"skippedSteps,omitempty"`
	Changes    []harden.Change   `json:"changes,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	Attack     []string          `json:"attack,omitempty"`
	Workload   bundle.Workload   `json:"workload"`
	Policy     string            `json:"policy"`
	// Launched is Verdict.Launched; read it with UnderLauncher.
	Launched bool `json:"launched,omitempty"`
}

// UnderLauncher reports whether the container's process runs under
// ward-init, so that its exec sessions must too. A report written before
// the Launched field existed says so by the Landlock step's change of
// process.args.
func (r *Report) UnderLauncher() bool {
	return r.Launched || slices.ContainsFunc(r.Changes, func(c harden.Change) bool {
		return c.Step == policy.StepLandlock && c.Path == "process.args"
	})
}

// ReportFinding is one finding in a Report.
type ReportFinding struct {
	ID         string            `json:"id"`
	Severity   policy.Severity   `json:"severity"`
	Path       string            `json:"path"`
	Detail     string            `json:"detail"`
	Summary    string            `json:"summary"`
	Attack     []string          `json:"attack"`
	References policy.References `json:"references"`
	// FromPod is true when the finding was carried from the pod's sandbox.
	FromPod bool   `json:"fromPod,omitempty"`
	Waived  string `json:"waivedBy,omitempty"`
	// Ward says what ward does about this finding.
	Ward string `json:"ward"`
}

// ReportExemption is an exemption that applied.
type ReportExemption struct {
	Name   string   `json:"name"`
	Reason string   `json:"reason"`
	Waive  []string `json:"waive,omitempty"`
	Skip   []string `json:"skip,omitempty"`
}

// Report builds the verdict's report.
func (v *Verdict) Report(p *policy.Policy) Report {
	r := Report{
		Action:   v.Action,
		Backend:  v.Backend,
		Audit:    v.Audit,
		Rule:     v.Rule,
		Reason:   v.Reason,
		Matched:  v.Matched,
		Deciding: v.Deciding,
		Findings: make([]ReportFinding, 0, len(v.Findings)),
		Skipped:  v.Skip,
		Changes:  v.Changes,
		Notes:    v.Notes,
		Workload: v.Workload,
		Policy:   v.Policy,
		Launched: v.Launched,
	}
	for _, f := range v.Findings {
		r.Findings = append(r.Findings, ReportFinding{
			ID:         f.Check.ID,
			Severity:   f.Check.Severity,
			Path:       f.Path,
			Detail:     f.Detail,
			Summary:    f.Check.Summary,
			Attack:     f.Check.Attack,
			References: f.Check.Refs,
			FromPod:    f.Pod,
			Waived:     f.Waived,
			Ward:       v.handling(p, f),
		})
		if f.Waived == "" {
			for _, a := range f.Check.Attack {
				if !slices.Contains(r.Attack, a) {
					r.Attack = append(r.Attack, a)
				}
			}
		}
	}
	slices.Sort(r.Attack)
	for _, x := range v.Exemptions {
		r.Exemptions = append(r.Exemptions, ReportExemption{Name: x.Name, Reason: x.Reason, Waive: x.Waive, Skip: x.Skip})
	}
	return r
}

// handling says, in a few words, what ward does about one finding.
func (v *Verdict) handling(p *policy.Policy, f policy.Finding) string {
	prefix := ""
	if v.Audit {
		prefix = "audit: would be "
	}
	if f.Waived != "" {
		return "waived (" + f.Waived + ")"
	}
	for _, name := range v.Matched {
		i := slices.IndexFunc(p.Rules, func(r policy.Rule) bool { return r.Name == name })
		if i < 0 || !slices.Contains(p.Rules[i].Match.Findings, f.Check.ID) {
			continue
		}
		switch r := p.Rules[i]; {
		case v.Action == policy.Reject && r.Action == policy.Reject:
			return prefix + "rejected (" + r.Name + ")"
		case v.Action == policy.Sandbox && r.Action == policy.Sandbox:
			return prefix + "sandboxed in " + string(v.Backend) + " (" + r.Name + ")"
		}
	}
	if v.Action == policy.Harden && f.Check.FixedBy != "" {
		if slices.ContainsFunc(v.Changes, func(c harden.Change) bool { return c.Step == f.Check.FixedBy }) {
			return "fixed (" + f.Check.FixedBy + ")"
		}
		if v.Audit {
			return prefix + "fixed (" + f.Check.FixedBy + ")"
		}
	}
	if v.Action == policy.Sandbox {
		return "contained by " + string(v.Backend)
	}
	if f.Check.ID == policy.IDWritableRootfs && v.Drift != DriftNone {
		return v.Drift.Handling()
	}
	return "reported"
}
