package policyexport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ward-runtime/ward/policy"
)

// Names of the exported objects.
const (
	RejectName  = "ward-reject"
	SandboxName = "ward-sandbox"
)

// VAP is the export for the API server: a policy and binding that deny
// what ward rejects, and a policy and binding that warn for what ward
// sandboxes.
type VAP struct {
	Reject, Sandbox               admissionv1.ValidatingAdmissionPolicy
	RejectBinding, SandboxBinding admissionv1.ValidatingAdmissionPolicyBinding
}

// ValidatingAdmissionPolicy builds the export of x's policy.
func (x *Exporter) ValidatingAdmissionPolicy() (*VAP, error) {
	v := &VAP{}
	var err error
	if v.Reject, err = x.vap(RejectName, policy.Reject, "ward would reject this pod on the node"); err != nil {
		return nil, err
	}
	if v.Sandbox, err = x.vap(SandboxName, policy.Sandbox, "ward will run this pod in a sandbox"); err != nil {
		return nil, err
	}
	deny := []admissionv1.ValidationAction{admissionv1.Deny}
	if x.p.Mode == policy.Audit {
		// An audit-mode policy rejects nothing on the node.
		deny = []admissionv1.ValidationAction{admissionv1.Warn, admissionv1.Audit}
	}
	v.RejectBinding = binding(RejectName, deny)
	v.SandboxBinding = binding(SandboxName, []admissionv1.ValidationAction{admissionv1.Warn})
	return v, nil
}

func binding(name string, actions []admissionv1.ValidationAction) admissionv1.ValidatingAdmissionPolicyBinding {
	return admissionv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels()},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name, ValidationActions: actions},
	}
}

func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": "ward"}
}

// matchConstraints are the workload kinds ward scan reads.
func matchConstraints() *admissionv1.MatchResources {
	rule := func(group string, resources ...string) admissionv1.NamedRuleWithOperations {
		return admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
			Rule:       admissionv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources},
		}}
	}
	return &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{
		rule("", "pods", "replicationcontrollers"),
		rule("apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
		rule("batch", "jobs", "cronjobs"),
	}}
}

func (x *Exporter) vap(name string, action policy.Action, lead string) (admissionv1.ValidatingAdmissionPolicy, error) {
	fail := admissionv1.Fail
	v := admissionv1.ValidatingAdmissionPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(), Annotations: map[string]string{
			"ward.dev/policy": x.p.Source,
		}},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    &fail,
			MatchConstraints: matchConstraints(),
		},
	}
	for _, kv := range variables() {
		v.Spec.Variables = append(v.Spec.Variables, admissionv1.Variable{Name: kv[0], Expression: kv[1]})
	}
	for i := range x.p.Rules {
		r := &x.p.Rules[i]
		if r.Action != action {
			continue
		}
		what := string(action)
		if action == policy.Sandbox {
			what += " in " + string(r.Backend)
		}
		// One validation per finding, so that the message names it; a
		// rule matching by severity or by filters alone gets one.
		groups := [][]string{nil}
		if len(r.Match.Findings) > 0 && r.Match.Severity == nil {
			groups = groups[:0]
			for _, id := range r.Match.Findings {
				groups = append(groups, []string{id})
			}
		} else if len(r.Match.Findings) > 0 {
			groups = [][]string{r.Match.Findings}
		}
		for _, ids := range groups {
			m, err := x.ruleMatch(r, ids)
			if err != nil {
				return v, err
			}
			msg := fmt.Sprintf("%s (%s, rule %s): %s", lead, what, r.Name, r.Reason)
			if len(ids) == 1 {
				msg = fmt.Sprintf("%s: %s (%s, rule %s): %s", lead, ids[0], what, r.Name, r.Reason)
			}
			v.Spec.Validations = append(v.Spec.Validations, admissionv1.Validation{
				Expression:        "!variables.containers.exists(c, " + m + ")",
				Message:           msg,
				MessageExpression: namingContainers(msg, m),
				Reason:            reason(),
			})
		}
	}
	if action == policy.Reject {
		if err := x.sandboxHostObjects(&v, lead); err != nil {
			return v, err
		}
		if err := x.sandboxHostNetwork(&v, lead); err != nil {
			return v, err
		}
	}
	return v, nil
}

// sandboxHostObjects is the node's built-in rule (policy.RuleSandboxHostObjects):
// a container a sandbox rule would take is rejected instead when it is
// handed a sensitive host path or a host socket, since the sandbox's file
// proxy reads host files with its own privileges.
func (x *Exporter) sandboxHostObjects(v *admissionv1.ValidatingAdmissionPolicy, lead string) error {
	objects := make([]string, 0, 2)
	for _, id := range []string{policy.IDSensitiveHostPath, policy.IDHostSocketMount} {
		e, err := x.unwaived(id)
		if err != nil {
			return err
		}
		objects = append(objects, e)
	}
	return x.onSandboxRoute(v, strings.Join(objects, " || "), func(r *policy.Rule) string {
		return fmt.Sprintf("%s (reject, rule %s): the container would go to %s under rule %s, but it is handed a sensitive host path or host socket, which a sandbox's file proxy reads with its own privileges",
			lead, policy.RuleSandboxHostObjects, r.Backend, r.Name)
	})
}

// sandboxHostNetwork is the node's built-in rule policy.RuleSandboxHostNetwork:
// a container a sandbox rule would take is rejected instead when its pod
// uses the node's network namespace, waived or not (a waiver accepts host
// networking; it does not make a sandbox able to run there).
func (x *Exporter) sandboxHostNetwork(v *admissionv1.ValidatingAdmissionPolicy, lead string) error {
	host, err := x.finding(policy.IDHostNetwork)
	if err != nil {
		return err
	}
	return x.onSandboxRoute(v, host, func(r *policy.Rule) string {
		return fmt.Sprintf("%s: host-network (reject, rule %s): the container would go to %s under rule %s, but its pod uses the node's network namespace, where a sandbox would take the node's addresses or be handed the node's network stack; run it without hostNetwork, or without what sends it to %[3]s",
			lead, policy.RuleSandboxHostNetwork, r.Backend, r.Name)
	})
}

// onSandboxRoute adds, for each sandbox rule, a validation refusing the
// containers that rule would take and for which cond (CEL over c) holds,
// with msg's message.
func (x *Exporter) onSandboxRoute(v *admissionv1.ValidatingAdmissionPolicy, cond string, msg func(*policy.Rule) string) error {
	for i := range x.p.Rules {
		r := &x.p.Rules[i]
		if r.Action != policy.Sandbox {
			continue
		}
		m, err := x.ruleMatch(r, r.Match.Findings)
		if err != nil {
			return err
		}
		match := "(" + m + ") && (" + cond + ")"
		text := msg(r)
		v.Spec.Validations = append(v.Spec.Validations, admissionv1.Validation{
			Expression:        "!variables.containers.exists(c, " + match + ")",
			Message:           text,
			MessageExpression: namingContainers(text, match),
			Reason:            reason(),
		})
	}
	return nil
}

// namingContainers is the messageExpression of a validation: its message
// and the names of the containers for which match holds, so that the
// message for a pod whose containers ward decides differently (an init
// container sandboxed, a sidecar rejected) says which ones. The API server
// falls back to the message if it cannot evaluate it.
func namingContainers(msg, match string) string {
	return strconv.Quote(msg+" (containers: ") + " + variables.containers.filter(c, " + match + `).map(c, c.name).join(", ") + ")"`
}

func reason() *metav1.StatusReason {
	r := metav1.StatusReasonForbidden
	return &r
}

// Objects returns the four objects in apply order.
func (v *VAP) Objects() []any {
	return []any{&v.Reject, &v.RejectBinding, &v.Sandbox, &v.SandboxBinding}
}

// WriteYAML writes objs as one multi-document YAML stream, in the field
// order of their JSON form.
func WriteYAML(w io.Writer, objs []any) error {
	for i, o := range objs {
		js, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("encoding %T: %w", o, err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(js, &n); err != nil {
			return fmt.Errorf("encoding %T: %w", o, err)
		}
		blockStyle(&n)
		dropNull(&n)
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(&n); err != nil {
			return fmt.Errorf("encoding %T: %w", o, err)
		}
		if i > 0 {
			io.WriteString(w, "---\n")
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
	}
	return nil
}

func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	if n.Kind == yaml.ScalarNode && n.Style == yaml.DoubleQuotedStyle {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// dropNull removes "creationTimestamp: null" and empty status objects that
// the API types always encode.
func dropNull(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		out := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if (v.Kind == yaml.ScalarNode && v.Tag == "!!null") || (k.Value == "status" && v.Kind == yaml.MappingNode && len(v.Content) == 0) {
				continue
			}
			out = append(out, k, v)
		}
		n.Content = out
	}
	for _, c := range n.Content {
		dropNull(c)
	}
}
