package scan

import (
	"fmt"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/ward-runtime/ward/policy"
)

// SARIF builds a SARIF 2.1.0 log: one rule per check that was found, with
// its summary, references and ATT&CK techniques as tags, and one result
// per finding located at the manifest field that causes it.
func (r *Report) SARIF() (*sarif.Report, error) {
	rep := sarif.NewReport()
	run := sarif.NewRunWithInformationURI("ward", "https://github.com/ward-runtime/ward")
	if v := Version(); v != "" {
		run.Tool.Driver.WithVersion(v)
	}
	eval := policy.NewEvaluator(r.Policy)
	for _, res := range r.Results {
		for _, f := range res.Findings {
			if run.GetRuleIndex(f.ID) < 0 {
				addRule(run, eval.Check(f.ID))
			}
			msg := fmt.Sprintf("%s %s container %s: %s (%s). ward: %s; decision %s.", res.Kind, res.Name, res.Container, f.Detail, f.Field, f.Ward, decisionOf(&res))
			result := run.CreateResultForRule(f.ID).
				WithLevel(level(f)).
				WithMessage(sarif.NewTextMessage(msg)).
				AddLocation(sarif.NewLocationWithPhysicalLocation(sarif.NewPhysicalLocation().
					WithArtifactLocation(sarif.NewArtifactLocation().WithURI(res.File)).
					WithRegion(sarif.NewRegion().WithStartLine(max(f.Line, 1)).WithStartColumn(max(f.Column, 1)))))
			result.WithPartialFingerprints(map[string]string{
				"wardFinding/v1": strings.Join([]string{res.Kind, res.Namespace, res.Name, res.Container, f.ID, f.Field}, "/"),
			})
			if f.Waived != "" {
				result.AddSuppression(sarif.NewSuppression().WithKind("external").WithJustification("waived by exemption " + f.Waived))
			}
		}
	}
	rep.AddRun(run)
	return rep, nil
}

// decisionOf says the container's decision in a few words.
func decisionOf(r *Result) string {
	d := string(r.Action)
	if r.Action == policy.Sandbox {
		d += " in " + string(r.Backend)
	}
	if r.Audit {
		d = "audit, would " + d
	}
	if r.Refused != "" {
		d += ", refused"
	}
	return d
}

func addRule(run *sarif.Run, c *policy.Check) {
	rule := run.AddRule(c.ID).WithName(ruleName(c.ID)).WithDescription(c.Summary)
	rule.WithFullDescription(sarif.NewMultiformatMessageString().WithText(c.Summary))
	help := []string{c.Summary}
	if refs := references(c.Refs); refs != "" {
		help = append(help, "References: "+refs+".")
	}
	if len(c.Attack) > 0 {
		help = append(help, "MITRE ATT&CK: "+strings.Join(c.Attack, ", ")+".")
	}
	if c.FixedBy != "" {
		help = append(help, "ward removes it on the node (harden step "+c.FixedBy+"); the decision is the policy's.")
	} else {
		help = append(help, "ward cannot harden it away; the policy rejects, sandboxes or reports it.")
	}
	rule.WithHelp(sarif.NewMultiformatMessageString().WithText(strings.Join(help, " ")))
	props := sarif.NewPropertyBag()
	tags := []string{"security", "kubernetes"}
	for _, a := range c.Attack {
		tags = append(tags, "external/attack/"+a)
	}
	props.WithTags(tags)
	// GitHub code scanning ranks alerts by this 0.0-10.0 score.
	props.Add("security-severity", securityScore(c.Severity))
	rule.WithProperties(props)
	rule.WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(severityLevel(c.Severity)))
}

// ruleName is the ID in PascalCase, as SARIF viewers show rule names.
func ruleName(id string) string {
	parts := strings.Split(id, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

func references(r policy.References) string {
	var out []string
	if r.PSS != "" {
		out = append(out, "Pod Security Standards "+r.PSS)
	}
	if r.CISKubernetes != "" {
		out = append(out, "CIS Kubernetes "+r.CISKubernetes)
	}
	if r.CISDocker != "" {
		out = append(out, "CIS Docker "+r.CISDocker)
	}
	if r.Kyverno != "" {
		out = append(out, "Kyverno "+r.Kyverno)
	}
	if r.CVE != "" {
		out = append(out, r.CVE)
	}
	return strings.Join(out, "; ")
}

func severityLevel(s policy.Severity) string {
	switch {
	case s >= policy.High:
		return sarif.LevelError
	case s >= policy.Medium:
		return sarif.LevelWarning
	}
	return sarif.LevelNote
}

// level is a result's level: error when the finding decides a rejection,
// else its severity's.
func level(f Finding) string {
	if strings.Contains(f.Ward, "rejected") {
		return sarif.LevelError
	}
	return severityLevel(f.Severity)
}

func securityScore(s policy.Severity) string {
	switch s {
	case policy.Critical:
		return "9.5"
	case policy.High:
		return "8.0"
	case policy.Medium:
		return "5.0"
	case policy.Low:
		return "2.0"
	}
	return "0.0"
}
