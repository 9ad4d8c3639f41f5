package scan

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ward-runtime/ward/policy"
)

// The PolicyReport of the Kubernetes Policy working group
// (wgpolicyk8s.io/v1alpha2), which Kyverno, Policy Reporter and other
// cluster dashboards read. Only the fields ward fills are declared; their
// names and enums follow the CRD.
type policyReport struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   prMetadata         `json:"metadata"`
	Scope      *prObjectReference `json:"scope,omitempty"`
	Summary    prSummary          `json:"summary"`
	Results    []prResult         `json:"results"`
}

type prMetadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type prSummary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// prObjectReference is the CRD's resources[] item, a core/v1
// ObjectReference.
type prObjectReference = corev1.ObjectReference

type prResult struct {
	Source     string              `json:"source"`
	Policy     string              `json:"policy"`
	Rule       string              `json:"rule,omitempty"`
	Category   string              `json:"category,omitempty"`
	Severity   string              `json:"severity,omitempty"`
	Result     string              `json:"result"`
	Scored     bool                `json:"scored"`
	Message    string              `json:"message,omitempty"`
	Resources  []prObjectReference `json:"resources,omitempty"`
	Properties map[string]string   `json:"properties,omitempty"`
}

// PolicyReport result values.
const (
	prPass = "pass"
	prFail = "fail"
	prWarn = "warn"
	prSkip = "skip"
)

// PolicyReport builds a PolicyReport of the scan: per container, one
// "decision" result (pass: hardened, warn: sandboxed, fail: rejected) and
// one result per finding (fail: it causes the rejection, warn: the policy
// sandboxes for it or only reports it, pass: ward hardens it away, skip:
// waived).
func (r *Report) PolicyReport() any {
	rep := policyReport{
		APIVersion: "wgpolicyk8s.io/v1alpha2",
		Kind:       "PolicyReport",
		Metadata:   prMetadata{Name: "ward-scan", Labels: map[string]string{"app.kubernetes.io/managed-by": "ward"}},
		Results:    []prResult{},
	}
	add := func(pr prResult) {
		rep.Results = append(rep.Results, pr)
		switch pr.Result {
		case prPass:
			rep.Summary.Pass++
		case prFail:
			rep.Summary.Fail++
		case prWarn:
			rep.Summary.Warn++
		case prSkip:
			rep.Summary.Skip++
		}
	}
	for _, res := range r.Results {
		ref := prObjectReference{APIVersion: apiVersionOf(res.Kind), Kind: res.Kind, Name: res.Name, Namespace: res.Namespace}
		props := map[string]string{"container": res.Container, "action": string(res.Action), "backend": string(res.Backend),
			"file": res.File, "line": strconv.Itoa(res.ContainerLine)}
		dec := prPass
		switch {
		case res.Action == policy.Reject || res.Refused != "":
			dec = prFail
		case res.Action == policy.Sandbox:
			dec = prWarn
		}
		msg := decisionOf(&res) + ": " + res.Reason
		if res.Refused != "" {
			msg += "; " + res.Refused
		}
		add(prResult{Source: "ward", Policy: r.Policy.Source, Rule: "decision", Category: "ward decision", Result: dec, Scored: true,
			Message: msg, Resources: []prObjectReference{ref}, Properties: props})
		for _, f := range res.Findings {
			out := prPass
			switch {
			case f.Waived != "":
				out = prSkip
			case strings.Contains(f.Ward, "rejected"):
				out = prFail
			case strings.HasPrefix(f.Ward, "fixed"):
				out = prPass
			default:
				out = prWarn
			}
			fp := map[string]string{"container": res.Container, "field": f.Field, "line": strconv.Itoa(f.Line), "ward": f.Ward}
			if len(f.Attack) > 0 {
				fp["attack"] = strings.Join(f.Attack, ",")
			}
			add(prResult{Source: "ward", Policy: r.Policy.Source, Rule: f.ID, Category: category(f), Severity: f.Severity.String(),
				Result: out, Scored: true, Message: f.Summary + " (" + f.Detail + ")", Resources: []prObjectReference{ref}, Properties: fp})
		}
	}
	return rep
}

func category(f Finding) string {
	if f.References.PSS != "" {
		return "Pod Security Standards"
	}
	return "ward"
}

func apiVersionOf(kind string) string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "v1"
}
