package policyexport

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"go.yaml.in/yaml/v3"
	admissionv1 "k8s.io/api/admissionregistration/v1"

	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/scan"
	"github.com/ward-runtime/ward/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// celEnv is the environment a ValidatingAdmissionPolicy's expressions are
// compiled in by the API server, as far as these expressions use it:
// object, request and variables; optionals; the strings extension.
func celEnv(t *testing.T) *cel.Env {
	t.Helper()
	env, err := cel.NewEnv(
		cel.Variable("object", cel.DynType),
		cel.Variable("request", cel.DynType),
		cel.Variable("variables", cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		ext.Strings(ext.StringsVersion(2)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// evaluator runs one ValidatingAdmissionPolicy the way the API server
// does: variables in order, then every validation; an expression that
// fails to evaluate counts as the policy's failurePolicy (Fail: denied).
type evaluator struct {
	vars  []cel.Program
	names []string
	vals  []cel.Program
	msgs  []string
	// msgExprs are the validations' messageExpressions.
	msgExprs []cel.Program
}

func compile(t *testing.T, env *cel.Env, v *admissionv1.ValidatingAdmissionPolicy) *evaluator {
	t.Helper()
	e := &evaluator{}
	prog := func(expr string) cel.Program {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("compiling %.200s: %v", expr, iss.Err())
		}
		p, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, va := range v.Spec.Variables {
		e.vars = append(e.vars, prog(va.Expression))
		e.names = append(e.names, va.Name)
	}
	for _, va := range v.Spec.Validations {
		e.vals = append(e.vals, prog(va.Expression))
		e.msgs = append(e.msgs, va.Message)
		e.msgExprs = append(e.msgExprs, prog(va.MessageExpression))
	}
	return e
}

// run returns the messages of the validations that fail for obj, as
// their messageExpressions write them.
func (e *evaluator) run(obj map[string]any, namespace string) ([]string, error) {
	vars := map[string]any{}
	act := map[string]any{"object": obj, "request": map[string]any{"namespace": namespace}, "variables": vars}
	for i, p := range e.vars {
		out, _, err := p.Eval(act)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", e.names[i], err)
		}
		vars[e.names[i]] = out
	}
	var failed []string
	for i, p := range e.vals {
		out, _, err := p.Eval(act)
		if err != nil {
			return nil, fmt.Errorf("validation %q: %w", e.msgs[i], err)
		}
		if out != types.True {
			msg, _, err := e.msgExprs[i].Eval(act)
			if err != nil {
				return nil, fmt.Errorf("messageExpression of %q: %w", e.msgs[i], err)
			}
			failed = append(failed, msg.Value().(string))
		}
	}
	return failed, nil
}

// TestVAPAgreesWithScan evaluates the exported policy with cel-go against
// every object of the manifest corpus: it denies exactly the objects of
// which ward scan (the node's judge) rejects a container, and warns
// exactly for those of which a container matches a sandbox rule.
func TestVAPAgreesWithScan(t *testing.T) {
	for _, tc := range []struct{ name, policy string }{
		{"default", ""},
		{"strict", "testdata/strict-policy.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Load(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			node := manifest.DefaultNode(p)
			v, err := NewExporter(p, node).ValidatingAdmissionPolicy()
			if err != nil {
				t.Fatal(err)
			}
			env := celEnv(t)
			deny, warn := compile(t, env, &v.Reject), compile(t, env, &v.Sandbox)
			s, err := scan.New(p, node)
			if err != nil {
				t.Fatal(err)
			}
			objs, _, err := manifest.Read([]string{"../../testdata/manifests"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var agree, denied, warned int
			for i := range objs {
				o := &objs[i]
				rs, err := s.Object(o)
				if err != nil {
					t.Fatal(err)
				}
				wantDeny, wantWarn := scan.Admission(p, rs)
				u, err := o.Unstructured()
				if err != nil {
					t.Fatal(err)
				}
				ns := o.Namespace
				if ns == "" {
					ns = "default"
				}
				d, err := deny.run(u, ns)
				if err != nil {
					t.Fatalf("%s %s: %v", o.File, o.Name, err)
				}
				w, err := warn.run(u, ns)
				if err != nil {
					t.Fatalf("%s %s: %v", o.File, o.Name, err)
				}
				if (len(d) > 0) != wantDeny || (len(w) > 0) != wantWarn {
					t.Errorf("%s:%d %s %s: admission deny=%v warn=%v (%v %v); scan reject=%v sandbox-rule=%v",
						o.File, o.Line, o.Kind, o.Name, len(d) > 0, len(w) > 0, d, w, wantDeny, wantWarn)
					continue
				}
				// The messages name the containers the scan rejects by
				// a rule of their own (and may name those rejected
				// because their pod's sandbox is), and exactly those a
				// sandbox rule takes.
				own, all, sandboxed := scanContainers(p, rs)
				if got := namedContainers(d); !subset(own, got) || !subset(got, all) {
					t.Errorf("%s:%d %s %s: denial names containers %q, the scan rejects %q by their own rule, %q in all", o.File, o.Line, o.Kind, o.Name, got, own, all)
				}
				if got := namedContainers(w); got != sandboxed {
					t.Errorf("%s:%d %s %s: warning names containers %q, a sandbox rule takes %q", o.File, o.Line, o.Kind, o.Name, got, sandboxed)
				}
				agree++
				if wantDeny {
					denied++
				}
				if wantWarn {
					warned++
				}
			}
			t.Logf("%d of %d objects agree (%d denied, %d warned)", agree, len(objs), denied, warned)
		})
	}
}

// scanContainers lists, sorted and joined, the containers the scan
// rejects by a rule of their own, all it rejects (with those whose pod's
// sandbox is rejected), and those a sandbox rule of p matches.
func scanContainers(p *policy.Policy, rs []scan.Result) (own, rejected, sandboxed string) {
	var mine, rej, sb []string
	for _, r := range rs {
		if r.Rejected() {
			rej = append(rej, r.Container)
			if r.Rule != "" {
				mine = append(mine, r.Container)
			}
		}
		for _, name := range r.Matched {
			if i := slices.IndexFunc(p.Rules, func(rule policy.Rule) bool { return rule.Name == name }); i >= 0 && p.Rules[i].Action == policy.Sandbox {
				sb = append(sb, r.Container)
				break
			}
		}
	}
	join := func(names []string) string {
		slices.Sort(names)
		return strings.Join(slices.Compact(names), ",")
	}
	return join(mine), join(rej), join(sb)
}

// subset reports whether every name of the joined list a is in b.
func subset(a, b string) bool {
	if a == "" {
		return true
	}
	for _, n := range strings.Split(a, ",") {
		if !slices.Contains(strings.Split(b, ","), n) {
			return false
		}
	}
	return true
}

// namedContainers lists, sorted and joined, the containers the messages
// name in their "(containers: ...)" tails.
func namedContainers(msgs []string) string {
	var names []string
	for _, m := range msgs {
		i := strings.LastIndex(m, " (containers: ")
		if i < 0 || !strings.HasSuffix(m, ")") {
			continue
		}
		for _, n := range strings.Split(strings.TrimSuffix(m[i+len(" (containers: "):], ")"), ", ") {
			if n != "" {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}

func TestVAPGolden(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewExporter(p, manifest.DefaultNode(p)).ValidatingAdmissionPolicy()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteYAML(&b, v.Objects()); err != nil {
		t.Fatal(err)
	}
	// The YAML reads back as the same objects.
	dec := yaml.NewDecoder(bytes.NewReader(b.Bytes()))
	n := 0
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		n++
		if doc["apiVersion"] != "admissionregistration.k8s.io/v1" {
			t.Errorf("document %d: apiVersion %v", n, doc["apiVersion"])
		}
	}
	if n != 4 {
		t.Errorf("%d documents, want 4", n)
	}
	golden := filepath.Join("testdata", "vap-default.yaml")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/policyexport -update)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Errorf("export differs from %s (go test ./internal/policyexport -update to accept)", golden)
	}
	if !strings.Contains(b.String(), "validationActions:\n    - Deny") {
		t.Error("the reject binding does not deny")
	}
}

// TestKyvernoCarriesTheSameCEL: the ClusterPolicy holds exactly the
// expressions TestVAPAgreesWithScan evaluates. (Kyverno's own CLI is not
// built here; its CEL engine is the same cel-go with the same layout.)
func TestKyvernoCarriesTheSameCEL(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewExporter(p, manifest.DefaultNode(p)).ValidatingAdmissionPolicy()
	if err != nil {
		t.Fatal(err)
	}
	k := v.Kyverno().(kyvernoPolicy)
	if len(k.Spec.Rules) != 2 || k.Spec.Rules[0].Validate.FailureAction != "Enforce" || k.Spec.Rules[1].Validate.FailureAction != "Audit" {
		t.Fatalf("rules %+v", k.Spec.Rules)
	}
	for i, src := range []*admissionv1.ValidatingAdmissionPolicy{&v.Reject, &v.Sandbox} {
		cel := k.Spec.Rules[i].Validate.CEL
		if !slices.Equal(cel.Variables, src.Spec.Variables) || len(cel.Expressions) != len(src.Spec.Validations) {
			t.Errorf("rule %d differs from %s", i, src.Name)
		}
	}
	var b bytes.Buffer
	if err := WriteYAML(&b, []any{v.Kyverno()}); err != nil || !strings.Contains(b.String(), "kind: ClusterPolicy") {
		t.Errorf("%v\n%.300s", err, b.String())
	}
}
