// Package policy judges a container from its OCI spec: checks find
// escape-risk shapes, and a policy turns the findings into one decision.
//
// Evaluation is pure: a spec, workload metadata and a policy in, a decision
// out. It does no I/O, so front doors can call it on every create and exec,
// and tests can call it exhaustively.
package policy

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/capability"
)

// Input is what one evaluation looks at.
type Input struct {
	Spec     *specs.Spec
	Workload bundle.Workload
	// Pod carries the sandbox's verdict to an app container of the pod;
	// nil for sandboxes and standalone containers.
	Pod *PodContext
	// HostPaths maps bind-mount sources to where their symbolic links lead
	// on the host. Front doors fill it (bundle.ResolveHostPaths); without it
	// checks are lexical.
	HostPaths map[string]string
	// Node are the facts about the host objects the spec names (package
	// nodefacts gathers them); nil judges them by spelling alone.
	Node *NodeFacts
	// ContainerID is the ID the container manager gave the container,
	// when the front door knows it: a runtime-managed directory named
	// after it is the container's own.
	ContainerID string
	// Userns is the user namespace a front door established for the
	// container (an allocated ID block, or the sandbox's namespace for a
	// pod's app container); nil when none was, as for a front door with no
	// ID pool. The checks do not read it: the userns harden step does.
	Userns *UsernsInput
}

// UsernsInput is one container's user-namespace facts, known only per
// call: the block of host IDs allocated to it (or its pod) and, for a
// pod's app container, the sandbox's namespace to join.
type UsernsInput struct {
	// HostID is the first host ID of the block; container IDs 0..Size-1
	// map to HostID..HostID+Size-1, for users and groups alike.
	HostID uint32
	Size   uint32
	// Join is the path of the user namespace to join ("" creates one).
	Join string
	// Placeholder is true when no allocator was in play (ward explain):
	// the block only stands for the one a front door would allocate.
	Placeholder bool
}

// PodContext is what a pod's app containers inherit from its sandbox:
// host namespaces and sysctls show only in the sandbox spec, and an app
// container may tighten the pod's decision but never loosen it.
type PodContext struct {
	SandboxID string
	Action    Action
	Backend   Backend
	// Findings are the sandbox's pod-level findings.
	Findings []Finding
}

// Decision is the outcome of one evaluation.
type Decision struct {
	// Action is what ward does. In audit mode it is what ward would do.
	Action  Action
	Backend Backend
	// Rule names the deciding rule; "" when no rule matched (harden).
	Rule string
	// Reason explains the decision in one line.
	Reason string
	// Matched lists every rule that matched, the deciding one included.
	Matched []string
	// Deciding lists, once each, the IDs of the findings that decided:
	// those the deciding rule matched on, or the pod's findings when the
	// pod's decision decided. Messages and logs name these; nobody parses
	// a sentence to find them.
	Deciding []string
	// Findings are all findings, waived ones included (with Waived set).
	Findings []Finding
	// Exemptions lists the exemptions that applied, with their reasons.
	Exemptions []Exemption
	// Skip lists harden steps that exemptions turned off.
	Skip []string
	// Audit is true when the policy is in audit mode: nothing is enforced.
	Audit bool
	// Workload is the metadata the decision was made for.
	Workload bundle.Workload
	// Policy names the policy's source.
	Policy string
}

// Enforced reports whether the decision changes anything.
func (d *Decision) Enforced() bool { return !d.Audit }

// PodContext returns what this sandbox decision passes to the pod's app
// containers.
func (d *Decision) PodContext() *PodContext {
	pc := &PodContext{SandboxID: d.Workload.SandboxID, Action: d.Action, Backend: d.Backend}
	for _, f := range d.Findings {
		if podLevel(f.Check.ID) {
			pc.Findings = append(pc.Findings, f)
		}
	}
	return pc
}

// Evaluator applies one policy. It is immutable and safe for concurrent use.
type Evaluator struct {
	policy *Policy
	checks []Check
	byID   map[string]*Check
	node   nodeTables
}

// nodeTables are the lookup tables checks use, built once per evaluator.
type nodeTables struct {
	kubeletPods string
	runtimeDirs []string
	volumeDirs  []string
	rootfsDirs  []string
	hooks       []HookRule
	workload    []string
	listeners   []string
	sockets     []string
	sensitive   []sensitiveDir
	baseline    capability.Set
	dangerous   map[string]string
	masked      []string
	readonly    []string
}

// ownership says whose a bind source is.
type ownership int

const (
	// hostOwned: a host path, whoever made it.
	hostOwned ownership = iota
	// podOwned: below this pod's kubelet directory or a runtime directory
	// named after this sandbox or container.
	podOwned
	// volumeOwned: a container manager's named volume, made for
	// containers and shared between them by design.
	volumeOwned
)

// owner proves whose src (clean, resolved) is. Only this pod's UID and this
// sandbox's or container's ID count: a directory of another pod or
// container is a host path like any other, so that ward never idmaps, nor
// waives a finding for, something it has not proved the container's own.
func (n *nodeTables) owner(src string, in *Input) ownership {
	below := func(dir, id string) bool {
		if id == "" || id == "." || id == ".." || strings.Contains(id, "/") || !within(src, dir) || src == dir {
			return false
		}
		first, rest, _ := strings.Cut(src[len(dir)+1:], "/")
		return first == id && rest != ""
	}
	if below(n.kubeletPods, in.Workload.PodUID) {
		return podOwned
	}
	for _, d := range n.runtimeDirs {
		if below(d, in.Workload.SandboxID) || below(d, in.ContainerID) {
			return podOwned
		}
	}
	for _, d := range n.volumeDirs {
		if !within(src, d) || src == d {
			continue
		}
		parts := strings.SplitN(src[len(d)+1:], "/", 3)
		if len(parts) >= 2 && parts[1] == "_data" && parts[0] != "" && parts[0] != "." && parts[0] != ".." {
			return volumeOwned
		}
	}
	return hostOwned
}

// resolved is where a mount source leads on this node: the node facts'
// resolution, else the symbolic-link map, else its spelling.
func resolved(src string, in *Input) string {
	if o, ok := in.Node.object(src); ok && o.Resolved != "" {
		return o.Resolved
	}
	if real, ok := in.HostPaths[src]; ok && real != "" {
		return real
	}
	return src
}

// Own reports whether a bind mount's source is provably the container's
// own: one of this pod's kubelet volumes, a runtime file of this sandbox
// or container, a container manager's named volume, or inside a directory
// the operator gave to workloads (node.workloadDirs). Only those may be
// idmapped (harden's userns step); everything else is a host path.
func (e *Evaluator) Own(src string, in *Input) bool {
	if !path.IsAbs(src) {
		return false
	}
	if o, ok := in.Node.object(src); ok {
		// A source that is, or holds, a sensitive directory is never the
		// container's, whatever path it is reached by (a subPath bind).
		if _, bad := in.Node.exposes(o, false); bad {
			return false
		}
	}
	real := hostPath(resolved(src, in))
	if slices.ContainsFunc(e.node.workload, func(d string) bool { return within(real, d) }) {
		return true
	}
	return e.node.owner(real, in) != hostOwned
}

// NewEvaluator prepares p for evaluation.
func NewEvaluator(p *Policy) *Evaluator {
	e := &Evaluator{policy: p, checks: catalog()}
	e.byID = make(map[string]*Check, len(e.checks))
	for i := range e.checks {
		e.byID[e.checks[i].ID] = &e.checks[i]
	}
	dirs := make([]string, len(p.Node.RuntimeDirs))
	for i, d := range p.Node.RuntimeDirs {
		dirs[i] = hostPath(d)
	}
	e.node = nodeTables{
		kubeletPods: hostPath(path.Join(p.Node.KubeletRoot, "pods")),
		runtimeDirs: dirs,
		volumeDirs:  cleanAll(p.Node.VolumeDirs),
		rootfsDirs:  cleanAll(p.Node.RootfsDirs),
		workload:    cleanAll(p.Node.WorkloadDirs),
		hooks:       p.Node.Hooks,
		listeners:   cleanAll(p.Node.SeccompListeners),
		sockets:     ContainerSockets(),
		sensitive:   nodeSensitive(p),
		baseline:    capability.SetOf(capability.Baseline()),
		dangerous:   dangerousCaps(),
		masked:      CoreMaskedPaths(),
		readonly:    CoreReadonlyPaths(),
	}
	return e
}

// nodeSensitive is the sensitive set with this node's kubelet root, where
// the policy moved it: another pod's volumes are below it.
func nodeSensitive(p *Policy) []sensitiveDir {
	dirs := sensitiveDirs()
	if k := hostPath(p.Node.KubeletRoot); k != "/var/lib/kubelet" {
		dirs = append(dirs, sensitiveDir{k, true})
	}
	return dirs
}

func cleanAll(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = hostPath(p)
	}
	return out
}

// Policy returns the evaluator's policy.
func (e *Evaluator) Policy() *Policy { return e.policy }

// Checks returns the catalog, for `ward checks` and documentation.
func (e *Evaluator) Checks() []Check { return slices.Clone(e.checks) }

// Check returns the check with the given ID, or nil.
func (e *Evaluator) Check(id string) *Check { return e.byID[id] }

// Evaluate judges one container.
func (e *Evaluator) Evaluate(in Input) Decision {
	s := scan{in: &in, node: &e.node, checks: e.byID, findings: make([]Finding, 0, 16)}
	s.runChecks()
	e.trust(&s)

	d := Decision{
		Action:   Harden,
		Backend:  Runc,
		Reason:   "no rule matched; the container is hardened",
		Workload: in.Workload,
		Policy:   e.policy.Source,
		Audit:    e.policy.Mode == Audit,
	}
	e.exempt(&d, &s)
	d.Findings = s.findings
	var decider *Rule
	for i := range e.policy.Rules {
		r := &e.policy.Rules[i]
		if !e.matches(&r.Match, &in, s.findings, true) {
			continue
		}
		d.Matched = append(d.Matched, r.Name)
		if decider == nil || r.Action.strictness() > decider.Action.strictness() {
			decider = r
		}
	}
	if decider != nil {
		d.Action, d.Rule, d.Reason = decider.Action, decider.Name, decider.Reason
		d.Backend = Runc
		if decider.Action == Sandbox {
			d.Backend = decider.Backend
		}
		d.Deciding = deciding(s.findings, decider.Match.Findings, false)
	}
	if pc := in.Pod; pc != nil && pc.Action.strictness() > d.Action.strictness() {
		d.Action, d.Backend, d.Rule = pc.Action, pc.Backend, ""
		d.Reason = "the pod's sandbox was decided " + string(pc.Action) + "; a container can only tighten its pod's decision"
		d.Deciding = deciding(s.findings, nil, true)
	}
	if in.Pod != nil && in.Pod.Action == Sandbox && d.Action == Sandbox && d.Backend != in.Pod.Backend {
		// One pod runs in one sandbox: the pod's backend wins.
		d.Backend = in.Pod.Backend
	}
	if d.Action == Sandbox {
		sandboxHostObjects(&d)
	}
	if d.Action == Sandbox {
		sandboxHostNetwork(&d)
	}
	return d
}

// deciding lists the unwaived findings among ids (all of them when ids is
// empty: a rule that matched on namespace or severity decided on every
// finding), or the pod's findings when pod is true, each ID once.
func deciding(fs []Finding, ids []string, pod bool) []string {
	var out []string
	for _, f := range fs {
		switch {
		case f.Waived != "" || slices.Contains(out, f.Check.ID):
		case pod && !f.Pod:
		case !pod && len(ids) > 0 && !slices.Contains(ids, f.Check.ID):
		default:
			out = append(out, f.Check.ID)
		}
	}
	return out
}

// RuleSandboxHostObjects names the built-in rule that refuses to send host
// objects into a sandbox.
const RuleSandboxHostObjects = "sandbox-host-objects"

// sandboxHostObjects rejects a sandboxed container that is handed a
// sensitive host directory or a host socket, read-only included. gVisor's
// gofer and Kata's file daemon open host files on the host with their own
// privileges: the sandbox stands between the workload and the kernel, not
// between the workload and the files it was given, and on the hardened
// route container root is an unprivileged host ID that root-only files
// keep out. Asking for more privilege must not buy more host access.
func sandboxHostObjects(d *Decision) {
	for _, f := range d.Findings {
		if f.Waived != "" {
			continue
		}
		switch f.Check.ID {
		case IDSensitiveHostPath, IDHostSocketMount:
			d.Action, d.Backend, d.Rule = Reject, Runc, RuleSandboxHostObjects
			d.Reason = "a sandbox's file proxy reads host files with its own privileges: " + f.Check.ID + " at " + f.Path + " is refused on the sandbox route"
			d.Matched = append(d.Matched, RuleSandboxHostObjects)
			return
		}
	}
}

// RuleSandboxHostNetwork names the built-in rule that refuses to run a
// sandbox in the node's network namespace.
const RuleSandboxHostNetwork = "sandbox-host-network"

// sandboxHostNetwork rejects a sandboxed container that shares the node's
// network namespace (a host-network pod's, Docker's --network host, a
// namespace joined by path that is the node's). gVisor has two ways to run
// there and ward takes neither: its own network stack (runsc's default)
// takes the namespace's addresses and routes off its interfaces, here the
// node's own, and does not give them back; the Sentry on the namespace's
// stack (--network=host) hands the workload the node's network stack, and
// with NET_ADMIN the node's interfaces, routes and firewall, which the
// sandbox cannot take back. Running it with no network instead
// (--network=none) is a breakage the workload cannot tell from a fault.
// A waived host-network finding counts too: a waiver accepts host
// networking, it does not make a sandbox able to run there.
func sandboxHostNetwork(d *Decision) {
	i := slices.IndexFunc(d.Findings, func(f Finding) bool { return f.Check.ID == IDHostNetwork })
	if i < 0 {
		return
	}
	be := d.Backend
	d.Action, d.Backend, d.Rule = Reject, Runc, RuleSandboxHostNetwork
	d.Reason = "a " + string(be) + " sandbox cannot share the node's network namespace (host-network at " + d.Findings[i].Path +
		"): it would take the node's addresses into its own network stack, or hand the workload the node's network stack; " +
		"run it without host networking, or without what sends it to " + string(be) + " (the other findings named), " +
		"or exempt those findings to run it hardened on runc"
	d.Matched = append(d.Matched, RuleSandboxHostNetwork)
	if !slices.Contains(d.Deciding, IDHostNetwork) {
		d.Deciding = append(d.Deciding, IDHostNetwork)
	}
}

// trust adds the untrusted-workload finding.
func (e *Evaluator) trust(s *scan) {
	t := &e.policy.Untrusted
	w := &s.in.Workload
	if t.Annotation != "" && s.in.Spec.Annotations[t.Annotation] == "true" {
		s.emit(IDUntrustedWorkload, fieldOf("annotations", t.Annotation), t.Annotation+"=true")
	}
	if w.Namespace != "" && matchAny(t.Namespaces, w.Namespace) {
		s.emit(IDUntrustedWorkload, fieldOf("annotations", bundle.AnnotationSandboxNamespace), "namespace "+w.Namespace+" is untrusted")
	}
	if len(t.AllowedRegistries) > 0 && w.Image != "" {
		reg := Registry(w.Image)
		if !matchAny(t.AllowedRegistries, reg) && !matchAny(t.AllowedRegistries, w.Image) {
			s.emit(IDUntrustedWorkload, fieldOf("annotations", bundle.AnnotationImageName), "image "+w.Image+" is from "+reg+", outside allowedRegistries")
		}
	}
}

// exempt applies exemptions: waived findings are marked, skipped steps
// collected.
func (e *Evaluator) exempt(d *Decision, s *scan) {
	for i := range e.policy.Exemptions {
		x := &e.policy.Exemptions[i]
		if !e.matches(&x.Match, s.in, nil, false) {
			continue
		}
		d.Exemptions = append(d.Exemptions, *x)
		for j := range s.findings {
			f := &s.findings[j]
			if f.Waived == "" && (slices.Contains(x.Waive, "*") || slices.Contains(x.Waive, f.Check.ID)) {
				f.Waived = x.Name
			}
		}
		for _, st := range x.Skip {
			if !slices.Contains(d.Skip, st) {
				d.Skip = append(d.Skip, st)
			}
		}
	}
}

func (e *Evaluator) matches(m *Match, in *Input, findings []Finding, useFindings bool) bool {
	if useFindings && len(m.Findings) > 0 {
		if !slices.ContainsFunc(findings, func(f Finding) bool {
			return f.Waived == "" && slices.Contains(m.Findings, f.Check.ID)
		}) {
			return false
		}
	}
	if useFindings && m.Severity != nil {
		if !slices.ContainsFunc(findings, func(f Finding) bool {
			return f.Waived == "" && f.Check.Severity >= *m.Severity
		}) {
			return false
		}
	}
	if len(m.Namespaces) > 0 && !matchAny(m.Namespaces, in.Workload.Namespace) {
		return false
	}
	if len(m.Images) > 0 && !matchAny(m.Images, in.Workload.Image) {
		return false
	}
	for k, want := range m.Annotations {
		got, ok := in.Spec.Annotations[k]
		if !ok || (want != "*" && got != want) {
			return false
		}
	}
	return true
}

// Registry returns the registry host of an image reference, as container
// managers resolve it: the first path element when it looks like a host
// (has a dot or a port, or is localhost), docker.io otherwise.
func Registry(image string) string {
	first, rest, ok := strings.Cut(image, "/")
	if ok && rest != "" && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// matchAny reports whether s matches one of the globs. In these globs '*'
// matches any run of characters, '/' included, because image names and
// registries are not file paths.
func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if glob(g, s) {
			return true
		}
	}
	return false
}

func glob(pattern, s string) bool {
	// Iterative wildcard match with backtracking to the last '*'.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
