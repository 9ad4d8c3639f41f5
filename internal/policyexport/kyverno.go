package policyexport

import (
	admissionv1 "k8s.io/api/admissionregistration/v1"
)

// The Kyverno ClusterPolicy (kyverno.io/v1, CEL validation, Kyverno 1.13
// or later) carrying the same variables and expressions as the
// ValidatingAdmissionPolicy: one rule that enforces the rejections, one
// that audits the sandboxing. Only the fields ward fills are declared.
// Background scans are off: the expressions read request.namespace, which
// background scans do not have.
type kyvernoPolicy struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   kyvernoMeta `json:"metadata"`
	Spec       kyvernoSpec `json:"spec"`
}

type kyvernoMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type kyvernoSpec struct {
	Background bool          `json:"background"`
	Rules      []kyvernoRule `json:"rules"`
}

type kyvernoRule struct {
	Name     string          `json:"name"`
	Match    kyvernoMatch    `json:"match"`
	Validate kyvernoValidate `json:"validate"`
}

type kyvernoMatch struct {
	Any []kyvernoFilter `json:"any"`
}

type kyvernoFilter struct {
	Resources kyvernoResources `json:"resources"`
}

type kyvernoResources struct {
	Kinds      []string `json:"kinds"`
	Operations []string `json:"operations"`
}

type kyvernoValidate struct {
	FailureAction string     `json:"failureAction"`
	CEL           kyvernoCEL `json:"cel"`
}

type kyvernoCEL struct {
	Variables   []admissionv1.Variable   `json:"variables"`
	Expressions []admissionv1.Validation `json:"expressions"`
}

// Kyverno builds the ClusterPolicy from the same expressions as v.
func (v *VAP) Kyverno() any {
	match := kyvernoMatch{Any: []kyvernoFilter{{Resources: kyvernoResources{
		Kinds:      []string{"Pod", "ReplicationController", "apps/v1/Deployment", "apps/v1/ReplicaSet", "apps/v1/StatefulSet", "apps/v1/DaemonSet", "batch/v1/Job", "batch/v1/CronJob"},
		Operations: []string{"CREATE", "UPDATE"},
	}}}}
	enforce := "Enforce"
	for _, a := range v.RejectBinding.Spec.ValidationActions {
		if a != admissionv1.Deny {
			enforce = "Audit"
		}
	}
	rule := func(name, action string, p *admissionv1.ValidatingAdmissionPolicy) kyvernoRule {
		return kyvernoRule{Name: name, Match: match, Validate: kyvernoValidate{FailureAction: action,
			CEL: kyvernoCEL{Variables: p.Spec.Variables, Expressions: p.Spec.Validations}}}
	}
	return kyvernoPolicy{
		APIVersion: "kyverno.io/v1",
		Kind:       "ClusterPolicy",
		Metadata: kyvernoMeta{Name: "ward", Labels: labels(), Annotations: map[string]string{
			"policies.kyverno.io/title":    "ward: the node's verdict at admission",
			"policies.kyverno.io/category": "ward",
			// The expressions read every workload kind themselves.
			"pod-policies.kyverno.io/autogen-controllers": "none",
			"ward.dev/policy": v.Reject.Annotations["ward.dev/policy"],
		}},
		Spec: kyvernoSpec{Background: false, Rules: []kyvernoRule{
			rule(RejectName, enforce, &v.Reject),
			rule(SandboxName, "Audit", &v.Sandbox),
		}},
	}
}
