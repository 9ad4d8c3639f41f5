package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
)

func TestDefaultPolicyIsValid(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != Enforce || len(p.Rules) == 0 {
		t.Errorf("default policy: mode %s, %d rules", p.Mode, len(p.Rules))
	}
	// The default's rejections are the ones the issue and DESIGN.md promise.
	rejected := map[string]bool{}
	for _, r := range p.Rules {
		if r.Action == Reject {
			for _, id := range r.Match.Findings {
				rejected[id] = true
			}
		}
	}
	for _, id := range []string{IDPrivileged, IDHostPID, IDHostIPC, IDContainerSocketMount, IDSensitiveHostPathWritable, IDProcFDCwd, IDUnsafeSysctl, IDSysctlInjection} {
		if !rejected[id] {
			t.Errorf("default policy does not reject %s", id)
		}
	}
}

const validPolicy = `apiVersion: ward.dev/v1alpha1
kind: Policy
rules:
  - name: r1
    reason: because
    match:
      findings: [host-pid]
    action: reject
`

func TestParsePolicyErrorsCarryLines(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"bad yaml", "apiVersion: [", "line 1"},
		{"unknown field", validPolicy + "colour: blue\n", "line 9: field colour not found"},
		{"unknown nested field", strings.Replace(validPolicy, "    action: reject", "    action: reject\n    priority: 3", 1), "line 9: field priority not found"},
		{"wrong api version", strings.Replace(validPolicy, "v1alpha1", "v2", 1), "line 1: apiVersion"},
		{"unknown finding", strings.Replace(validPolicy, "[host-pid]", "[host-pid, host-everything]", 1), `line 7: rules[0].match.findings[1]: unknown finding "host-everything"`},
		{"bad action", strings.Replace(validPolicy, "action: reject", "action: allow", 1), "line 8: rules[0].action"},
		{"sandbox without backend", strings.Replace(validPolicy, "action: reject", "action: sandbox", 1), "rules[0].backend: sandbox needs a sandbox backend"},
		{"backend on reject", strings.Replace(validPolicy, "action: reject", "action: reject\n    backend: gvisor", 1), "line 9: rules[0].backend"},
		{"no reason", strings.Replace(validPolicy, "    reason: because\n", "", 1), "rules[0].reason: missing"},
		{"empty match", strings.Replace(validPolicy, "      findings: [host-pid]\n", "      {}\n", 1), "rules[0].match: empty"},
		{"bad severity", strings.Replace(validPolicy, "findings: [host-pid]", "severity: dire", 1), `unknown severity "dire"`},
		{"duplicate rule", validPolicy + "  - name: r1\n    reason: x\n    match: {findings: [host-ipc]}\n    action: reject\n", "line 9: rules[1].name: duplicate"},
		{"bad mode", validPolicy + "mode: lenient\n", "mode: want enforce or audit"},
		{"unknown capability", validPolicy + "harden:\n  capabilities: [CAP_CHOWN, CAP_FLY]\n", `line 10: harden.capabilities[1]: unknown capability "CAP_FLY"`},
		{"exemption without reason", validPolicy + "exemptions:\n  - name: x\n    match: {namespaces: [kube-system]}\n    waive: ['*']\n", "exemptions[0].reason: missing"},
		{"exemption matching findings", validPolicy + "exemptions:\n  - name: x\n    reason: y\n    match: {findings: [host-pid]}\n    waive: ['*']\n", "exemptions[0].match: exemptions match workloads"},
		{"exemption with unknown step", validPolicy + "exemptions:\n  - name: x\n    reason: y\n    match: {namespaces: [a]}\n    skip: [everything]\n", `exemptions[0].skip[0]: unknown harden step "everything"`},
		{"bad userns pool", validPolicy + "userns:\n  enabled: true\n  pool: 'ward:1'\n", `line 11: userns.pool: "ward:1" is not a user name`},
		{"bad onUnidmappable", validPolicy + "userns:\n  onUnidmappable: ignore\n", `line 10: userns.onUnidmappable: want reject or chown, got "ignore"`},
		{"unknown userns field", validPolicy + "userns:\n  range: 5\n", "field range not found"},
		{"empty", "", "empty policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "node.yaml")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !strings.HasPrefix(err.Error(), "node.yaml: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to name node.yaml and say %q", err, tt.want)
			}
		})
	}
}

func TestLoadFileLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(validPolicy+"#"+strings.Repeat("x", MaxPolicySize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("LoadFile(big) = %v, want a size error", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("LoadFile(missing) succeeded")
	}
}

func TestSourceKeepsLastGoodPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(validPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(path)
	if err != nil {
		t.Fatal(err)
	}
	good := src.Current()
	if err := os.WriteFile(path, []byte(validPolicy+"  - {name: broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if src.Current() != good {
		t.Error("a failed reload replaced the last good policy")
	}
	if _, err := NewSource(path); err == nil {
		t.Error("NewSource opened the gate on a broken policy")
	}
	ok := strings.Replace(validPolicy, "[host-pid]", "[host-ipc]", 1)
	if err := os.WriteFile(path, []byte(ok), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := src.Current().Rules[0].Match.Findings[0]; got != IDHostIPC {
		t.Errorf("reloaded policy matches %s", got)
	}
}

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStrictestRuleWins(t *testing.T) {
	p := mustParse(t, `apiVersion: ward.dev/v1alpha1
kind: Policy
rules:
  - {name: sandbox-first, reason: s, match: {findings: [cap-sys-admin]}, action: sandbox, backend: gvisor}
  - {name: harden-all, reason: h, match: {severity: info}, action: harden}
  - {name: reject-later, reason: r, match: {findings: [host-pid]}, action: reject}
`)
	s := cleanSpec()
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	removeNS(s, specs.PIDNamespace)
	d := NewEvaluator(p).Evaluate(Input{Spec: s})
	if d.Action != Reject || d.Rule != "reject-later" {
		t.Errorf("decision %s by %q, want reject by reject-later", d.Action, d.Rule)
	}
	if !slices.Equal(d.Matched, []string{"sandbox-first", "harden-all", "reject-later"}) {
		t.Errorf("matched = %v", d.Matched)
	}
}

func TestMatchConditions(t *testing.T) {
	p := mustParse(t, `apiVersion: ward.dev/v1alpha1
kind: Policy
untrusted:
  namespaces: [tenant-*]
  allowedRegistries: [registry.example.com, ghcr.io/acme/*]
rules:
  - {name: kata-ci, reason: ci jobs, match: {namespaces: [ci], images: ["*/builder:*"]}, action: sandbox, backend: kata}
  - {name: gvisor-untrusted, reason: u, match: {findings: [untrusted-workload]}, action: sandbox, backend: gvisor}
  - {name: reject-annotated, reason: a, match: {annotations: {example.com/quarantine: "*"}}, action: reject}
`)
	e := NewEvaluator(p)
	run := func(ns, image string, ann map[string]string) Decision {
		s := cleanSpec()
		s.Annotations = map[string]string{}
		for k, v := range ann {
			s.Annotations[k] = v
		}
		return e.Evaluate(Input{Spec: s, Workload: bundle.Workload{Kind: bundle.PodContainer, Namespace: ns, Image: image}})
	}
	tests := []struct {
		name, ns, image string
		ann             map[string]string
		action          Action
		backend         Backend
		rule            string
	}{
		{"trusted", "web", "registry.example.com/app:1", nil, Harden, Runc, ""},
		{"trusted org", "web", "ghcr.io/acme/tool:2", nil, Harden, Runc, ""},
		{"other registry", "web", "quay.io/x/y:1", nil, Sandbox, GVisor, "gvisor-untrusted"},
		{"docker hub short name", "web", "nginx:1.27", nil, Sandbox, GVisor, "gvisor-untrusted"},
		{"untrusted namespace", "tenant-7", "registry.example.com/app:1", nil, Sandbox, GVisor, "gvisor-untrusted"},
		{"ci builder", "ci", "registry.example.com/builder:3", nil, Sandbox, Kata, "kata-ci"},
		{"ci other image", "ci", "registry.example.com/app:3", nil, Harden, Runc, ""},
		{"quarantined", "web", "registry.example.com/app:1", map[string]string{"example.com/quarantine": "yes"}, Reject, Runc, "reject-annotated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := run(tt.ns, tt.image, tt.ann)
			if d.Action != tt.action || d.Backend != tt.backend || d.Rule != tt.rule {
				t.Errorf("decision %s/%s by %q, want %s/%s by %q (findings %v)", d.Action, d.Backend, d.Rule, tt.action, tt.backend, tt.rule, ids(d.Findings))
			}
		})
	}
}

func TestExemptionsWaiveAndShow(t *testing.T) {
	p := mustParse(t, `apiVersion: ward.dev/v1alpha1
kind: Policy
rules:
  - {name: no-host-net, reason: r, match: {findings: [host-network]}, action: reject}
exemptions:
  - name: kube-system-net
    reason: kube-proxy and CNI agents need the host network
    match: {namespaces: [kube-system]}
    waive: [host-network]
    skip: [seccomp]
`)
	e := NewEvaluator(p)
	s := cleanSpec()
	removeNS(s, specs.NetworkNamespace)
	d := e.Evaluate(Input{Spec: s, Workload: bundle.Workload{Namespace: "kube-system", PodUID: "u-1"}})
	if d.Action != Harden {
		t.Fatalf("exempted workload: %s by %s", d.Action, d.Rule)
	}
	if len(d.Exemptions) != 1 || d.Exemptions[0].Reason == "" || !slices.Equal(d.Skip, []string{StepSeccomp}) {
		t.Errorf("exemptions %v skip %v", d.Exemptions, d.Skip)
	}
	if len(d.Findings) != 1 || d.Findings[0].Waived != "kube-system-net" {
		t.Errorf("the waived finding must still be reported, marked: %+v", d.Findings)
	}
	d = e.Evaluate(Input{Spec: s, Workload: bundle.Workload{Namespace: "default"}})
	if d.Action != Reject || len(d.Exemptions) != 0 {
		t.Errorf("non-exempt workload: %s, exemptions %v", d.Action, d.Exemptions)
	}
}

func TestAuditModeDecidesButFlags(t *testing.T) {
	p := mustParse(t, validPolicy+"mode: audit\n")
	s := cleanSpec()
	removeNS(s, specs.PIDNamespace)
	d := NewEvaluator(p).Evaluate(Input{Spec: s})
	if d.Action != Reject || !d.Audit || d.Enforced() {
		t.Errorf("audit decision: %s audit=%v", d.Action, d.Audit)
	}
}

func TestPodContextCarriesAndTightens(t *testing.T) {
	e := testEvaluator(t)
	sandbox := cleanSpec()
	sandbox.Annotations[bundle.AnnotationContainerType] = "sandbox"
	removeNS(sandbox, specs.PIDNamespace)
	sd := e.Evaluate(Input{Spec: sandbox, Workload: bundle.WorkloadOf(sandbox)})
	if sd.Action != Reject {
		t.Fatalf("hostPID sandbox: %s", sd.Action)
	}
	app := cleanSpec()
	app.Annotations[bundle.AnnotationContainerType] = "container"
	for i := range app.Linux.Namespaces {
		if app.Linux.Namespaces[i].Type != specs.MountNamespace {
			app.Linux.Namespaces[i].Path = "/proc/4242/ns/" + string(app.Linux.Namespaces[i].Type)
		}
	}
	alone := e.Evaluate(Input{Spec: app, Workload: bundle.WorkloadOf(app)})
	if !slices.Equal(ids(alone.Findings), []string{IDPodContextUnknown}) {
		t.Errorf("app container without pod context: %v", ids(alone.Findings))
	}
	inPod := e.Evaluate(Input{Spec: app, Workload: bundle.WorkloadOf(app), Pod: sd.PodContext()})
	if inPod.Action != Reject || !slices.Contains(ids(inPod.Findings), IDHostPID) {
		t.Errorf("app container in a hostPID pod: %s %v", inPod.Action, ids(inPod.Findings))
	}
	for _, f := range inPod.Findings {
		if f.Check.ID == IDHostPID && !f.Pod {
			t.Error("carried finding not marked as the pod's")
		}
	}
	// A sandboxed pod keeps its backend even if the container alone would
	// only be hardened.
	gv := &PodContext{Action: Sandbox, Backend: GVisor}
	if d := e.Evaluate(Input{Spec: app, Workload: bundle.WorkloadOf(app), Pod: gv}); d.Action != Sandbox || d.Backend != GVisor {
		t.Errorf("container of a gVisor pod: %s/%s", d.Action, d.Backend)
	}
}

func TestRegistryAndGlob(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                          "docker.io",
		"library/nginx:1":                "docker.io",
		"docker.io/library/nginx:1":      "docker.io",
		"registry.k8s.io/pause:3.10":     "registry.k8s.io",
		"localhost/app":                  "localhost",
		"127.0.0.1:5000/app":             "127.0.0.1:5000",
		"ward.test/busybox:1":            "ward.test",
		"quay.io/org/app@sha256:abcdef0": "quay.io",
	} {
		if got := Registry(image); got != want {
			t.Errorf("Registry(%q) = %q, want %q", image, got, want)
		}
	}
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"ghcr.io/acme/*", "ghcr.io/acme/x/y:1", true},
		{"*/builder:*", "r.io/builder:3", true}, {"kube-*", "kube-system", true}, {"kube-*", "my-kube-system", false},
		{"a**b", "ab", true}, {"", "x", false},
	} {
		if got := glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}

func FuzzPolicy(f *testing.F) {
	f.Add([]byte(validPolicy))
	f.Add(DefaultYAML())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		// Every accepted policy must evaluate without panicking.
		s := cleanSpec()
		removeNS(s, specs.PIDNamespace)
		d := NewEvaluator(p).Evaluate(Input{Spec: s})
		switch d.Action {
		case Harden, Sandbox, Reject:
		default:
			t.Fatalf("accepted policy produced action %q", d.Action)
		}
	})
}

func TestDefaultWithoutUserns(t *testing.T) {
	on, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	off, err := Parse(DefaultWithoutUserns(), "default-without-userns")
	if err != nil {
		t.Fatal(err)
	}
	if !on.Userns.Enabled || off.Userns.Enabled {
		t.Fatalf("userns enabled: default %v, without %v", on.Userns.Enabled, off.Userns.Enabled)
	}
	if len(off.Rules) != len(on.Rules) || len(off.Rules) == 0 {
		t.Errorf("rules: %d without userns, %d in the default", len(off.Rules), len(on.Rules))
	}
}

// TestWorkloadDirs: a bind from inside a directory the operator gave to
// workloads is the container's own (idmapped); the directory cannot be, or
// hold, a sensitive one.
func TestWorkloadDirs(t *testing.T) {
	p, err := Parse([]byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nnode:\n  workloadDirs: [/srv/ci]\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEvaluator(p)
	for src, want := range map[string]bool{"/srv/ci": true, "/srv/ci/job-1/ws": true, "/srv/cix": false, "/srv": false, "/home/alice": false} {
		if got := e.Own(src, &Input{}); got != want {
			t.Errorf("Own(%s) = %v, want %v", src, got, want)
		}
	}
	for _, d := range []string{"/var/lib", "/etc/ci", "/var/lib/kubelet/pods", "/"} {
		if _, err := Parse([]byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nnode:\n  workloadDirs: ["+d+"]\n"), "t.yaml"); err == nil || !strings.Contains(err.Error(), "workloadDirs") {
			t.Errorf("workloadDirs %s: %v, want a refusal naming the field", d, err)
		}
	}
}

// TestSandboxHostNetwork: a container the policy sends to a sandbox is
// refused when it shares the node's network namespace, whether the spec
// shows it (no network namespace), the pod does (host-network carried from
// the sandbox) or a waiver accepted host networking; with its own
// namespace it goes to the sandbox. Both findings decide, so the message
// names what to change.
func TestSandboxHostNetwork(t *testing.T) {
	e := testEvaluator(t)
	withCap := func() *specs.Spec {
		s := cleanSpec()
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NET_ADMIN")
		return s
	}
	if d := e.Evaluate(Input{Spec: withCap(), Workload: bundle.WorkloadOf(withCap())}); d.Action != Sandbox {
		t.Fatalf("NET_ADMIN in its own network namespace: %s by %q (%v), want sandbox", d.Action, d.Rule, d.Deciding)
	}
	hostNet := withCap()
	removeNS(hostNet, specs.NetworkNamespace)
	d := e.Evaluate(Input{Spec: hostNet, Workload: bundle.WorkloadOf(hostNet)})
	if d.Action != Reject || d.Rule != RuleSandboxHostNetwork || d.Backend != Runc {
		t.Fatalf("NET_ADMIN in the node's network namespace: %s/%s by %q", d.Action, d.Backend, d.Rule)
	}
	if !slices.Equal(d.Deciding, []string{IDCapNetAdmin, IDHostNetwork}) {
		t.Errorf("deciding %v, want the capability and host-network", d.Deciding)
	}
	if !strings.Contains(d.Reason, "without host networking") {
		t.Errorf("reason does not say what to change: %s", d.Reason)
	}

	sandbox := cleanSpec()
	sandbox.Annotations[bundle.AnnotationContainerType] = "sandbox"
	removeNS(sandbox, specs.NetworkNamespace)
	sd := e.Evaluate(Input{Spec: sandbox, Workload: bundle.WorkloadOf(sandbox)})
	app := withCap()
	app.Annotations[bundle.AnnotationContainerType] = "container"
	for i := range app.Linux.Namespaces {
		app.Linux.Namespaces[i].Path = "/proc/4242/ns/" + string(app.Linux.Namespaces[i].Type)
	}
	if d := e.Evaluate(Input{Spec: app, Workload: bundle.WorkloadOf(app), Pod: sd.PodContext()}); d.Rule != RuleSandboxHostNetwork {
		t.Errorf("NET_ADMIN container of a host-network pod: %s by %q", d.Action, d.Rule)
	}

	untrusted := cleanSpec()
	untrusted.Annotations["ward.dev/untrusted"] = "true"
	removeNS(untrusted, specs.NetworkNamespace)
	if d := e.Evaluate(Input{Spec: untrusted, Workload: bundle.WorkloadOf(untrusted)}); d.Rule != RuleSandboxHostNetwork {
		t.Errorf("untrusted workload on the node's network: %s by %q", d.Action, d.Rule)
	}

	waived := mustParse(t, `apiVersion: ward.dev/v1alpha1
kind: Policy
rules:
  - {name: caps, reason: s, match: {findings: [cap-net-admin]}, action: sandbox, backend: gvisor}
exemptions:
  - {name: node-agents, reason: r, match: {namespaces: [kube-system]}, waive: [host-network]}
`)
	hostNet.Annotations[bundle.AnnotationSandboxNamespace] = "kube-system"
	if d := NewEvaluator(waived).Evaluate(Input{Spec: hostNet, Workload: bundle.WorkloadOf(hostNet)}); d.Rule != RuleSandboxHostNetwork {
		t.Errorf("waived host-network on the sandbox route: %s by %q", d.Action, d.Rule)
	}
}
