// Package scan judges Kubernetes manifests before they reach a node: each
// pod template is translated into the specs the node would see
// (package manifest) and judged by the same judge, policy and checks as the
// shim, and the verdicts are written in the formats CI and cluster tools
// read (table, JSON, SARIF, JUnit, PolicyReport).
package scan

import (
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Scanner judges manifests under one policy. It is immutable.
type Scanner struct {
	judge  *judge.Judge
	policy *policy.Policy
	node   manifest.Node
	// backends are ward's built-in backends: which are containerd shims.
	backends backend.Table
}

// New builds a Scanner for p on a node like n.
func New(p *policy.Policy, n manifest.Node) (*Scanner, error) {
	// No launcher: Landlock is a node-side detail that changes no
	// decision, and its note would only say ward-init is missing here.
	// Preview: a scan runs in CI and on developers' machines, where
	// ward's seccomp profile may not be generated (off Linux); its
	// stand-in changes no verdict (TestPreviewSeccompSameVerdicts).
	j, err := judge.New(p, judge.Options{UsernsPool: []userns.Range{userns.Placeholder()}, Preview: true})
	if err != nil {
		return nil, fmt.Errorf("building scanner: %w", err)
	}
	return &Scanner{judge: j, policy: p, node: n, backends: backend.Builtin()}, nil
}

// Result is the verdict for one container of one workload object.
type Result struct {
	File string `json:"file"`
	// Line is the line of the object in File.
	Line int `json:"line"`
	// Source is the chart template helm named for the object, if any.
	Source    string `json:"source,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Container string `json:"container"`
	// Init is true for init containers (sidecars included).
	Init    bool           `json:"init,omitempty"`
	Image   string         `json:"image,omitempty"`
	Action  policy.Action  `json:"action"`
	Backend policy.Backend `json:"backend"`
	Audit   bool           `json:"audit"`
	Rule    string         `json:"rule,omitempty"`
	Reason  string         `json:"reason"`
	// Matched lists every rule that matched, the deciding one included.
	Matched []string `json:"matchedRules,omitempty"`
	// Refused says why the node refuses a container its decision would
	// run: one decided for a backend that is a containerd shim of its own
	// (Kata) in a pod whose sandbox runs elsewhere, since a pod cannot
	// move to another shim once its sandbox runs.
	Refused string `json:"refused,omitempty"`
	// Findings are the judge's, each with the manifest field and line
	// that causes it.
	Findings []Finding `json:"findings"`
	// Assumptions are what only the node knows and the scan took as the
	// worst case.
	Assumptions []manifest.Assumption `json:"assumptions,omitempty"`
	Notes       []string              `json:"notes,omitempty"`
	// ContainerLine is the line of the container in File.
	ContainerLine int `json:"-"`
}

// Finding is a judge finding located in the manifest.
type Finding struct {
	judge.ReportFinding
	// Field is the manifest field, e.g.
	// spec.template.spec.containers[0].securityContext.privileged.
	Field  string `json:"field"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// Rejected reports whether the policy rejects the container (and is not
// in audit mode).
func (r *Result) Rejected() bool { return (r.Action == policy.Reject && !r.Audit) || r.Refused != "" }

// Scan judges every container of every object.
func (s *Scanner) Scan(objs []manifest.Object) ([]Result, error) {
	var out []Result
	for i := range objs {
		rs, err := s.Object(&objs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// Object judges one object's containers in its pod's context, as the shim
// judges the sandbox first and each app container with the sandbox's
// verdict.
func (s *Scanner) Object(o *manifest.Object) ([]Result, error) {
	pod, err := manifest.Translate(o, s.node)
	if err != nil {
		return nil, &manifest.Error{File: o.File, Line: o.Line, Err: err}
	}
	sb := pod.Sandbox.Spec
	sv, err := s.judge.Spec(policy.Input{Spec: sb, Workload: bundle.WorkloadOf(sb), Userns: placeholderUserns("")})
	if err != nil {
		return nil, fmt.Errorf("%s:%d: judging %s %s's sandbox: %w", o.File, o.Line, o.Kind, o.Name, err)
	}
	assumeNS := o.Namespace == "" && o.Template.Namespace == "" && s.namespaceMatters()
	var out []Result
	for i := range pod.Containers {
		c := &pod.Containers[i]
		v, err := s.judge.Spec(policy.Input{Spec: c.Spec.Spec, Workload: bundle.WorkloadOf(c.Spec.Spec), Pod: sv.PodContext(),
			Userns: placeholderUserns("/proc/<sandbox pid>/ns/user")})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: judging %s %s container %s: %w", o.File, o.Line, o.Kind, o.Name, c.Name, err)
		}
		rep := v.Report(s.policy)
		cl, _ := o.Position(c.Field)
		r := Result{
			File: o.File, Line: o.Line, Source: o.Source, Kind: o.Kind, Name: o.Name, Namespace: o.Namespace,
			Container: c.Name, Init: c.Init, Image: c.Image, Action: v.Action, Backend: v.Backend, Audit: v.Audit,
			Rule: v.Rule, Reason: v.Reason, Matched: v.Matched, Assumptions: slices.Clone(c.Assumptions), Notes: v.Notes, ContainerLine: cl,
		}
		if !v.Audit && v.Action == policy.Sandbox && s.backends[v.Backend].Kind == backend.ContainerdShim &&
			(sv.Action != policy.Sandbox || sv.Backend != v.Backend) {
			r.Refused = fmt.Sprintf("the node refuses it: its backend %s is a containerd shim, which takes whole pods at their sandbox, and this pod's sandbox runs on %s; give the pod the %s runtime class or annotation",
				v.Backend, podBackendOf(&sv), v.Backend)
		}
		if assumeNS {
			r.Assumptions = append(r.Assumptions, manifest.Assumption{ID: manifest.AssumeNamespace, Field: "metadata.namespace",
				Detail: "no namespace: kubectl applies the context's namespace; the policy judges by namespace, judged as \"default\""})
		}
		for _, f := range rep.Findings {
			field := pod.FieldOf(c, f.ID, f.Path, f.FromPod)
			line, col := o.Position(field)
			r.Findings = append(r.Findings, Finding{ReportFinding: f, Field: field, Line: line, Column: col})
		}
		out = append(out, r)
	}
	return out, nil
}

// podBackendOf is where a pod's sandbox runs under its verdict.
func podBackendOf(sv *judge.Verdict) policy.Backend {
	if sv.Action == policy.Sandbox && !sv.Audit {
		return sv.Backend
	}
	return policy.Runc
}

// namespaceMatters reports whether the policy judges by namespace, so that
// a manifest without one leaves the verdict to the node.
func (s *Scanner) namespaceMatters() bool {
	p := s.policy
	if len(p.Untrusted.Namespaces) > 0 {
		return true
	}
	for _, r := range p.Rules {
		if len(r.Match.Namespaces) > 0 {
			return true
		}
	}
	for _, x := range p.Exemptions {
		if len(x.Match.Namespaces) > 0 {
			return true
		}
	}
	return false
}

func placeholderUserns(join string) *policy.UsernsInput {
	r := userns.Placeholder()
	return &policy.UsernsInput{HostID: r.Start, Size: r.Size, Join: join, Placeholder: true}
}

// Version is ward's module version when the binary was built from a
// tagged module, else "".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return ""
	}
	return bi.Main.Version
}

// Admission is what an admission policy exported from p should do with
// the object whose container results are rs: deny it when a container is
// rejected, warn when a container matches a sandbox rule (whatever the
// stricter decision).
func Admission(p *policy.Policy, rs []Result) (deny, warn bool) {
	for _, r := range rs {
		deny = deny || r.Rejected()
		for _, name := range r.Matched {
			i := slices.IndexFunc(p.Rules, func(rule policy.Rule) bool { return rule.Name == name })
			warn = warn || (i >= 0 && p.Rules[i].Action == policy.Sandbox)
		}
	}
	return deny, warn
}
