// Package kyverno runs ward's exported admission policies in Kyverno's own
// engine, the kyverno CLI (`kyverno apply`), and checks, for every workload
// object of the manifest corpus, that they deny exactly what ward scan
// rejects and warn exactly for what a sandbox rule takes, naming the same
// containers: the ClusterPolicy of `ward policy export --format kyverno`,
// and the ValidatingAdmissionPolicy with its binding, which the CLI
// evaluates with the API server's own admission library.
//
// The CLI is a big build (integration/kyverno/build.sh, cached under
// /var/tmp): `make test-kyverno` builds it once and runs this test; without
// WARD_KYVERNO_BIN it skips.
package kyverno

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/policyexport"
	"github.com/ward-runtime/ward/internal/scan"
	"github.com/ward-runtime/ward/policy"
)

// object is one corpus object as handed to the CLI: renamed so that every
// object is unique in its namespace (the report is keyed by name), with
// ward scan's verdict for it.
type object struct {
	src       *manifest.Object
	name, ns  string
	deny      bool
	warn      bool
	rejected  []string // containers ward scan rejects
	ownReject []string // of those, the ones rejected by a rule of their own
	sandboxed []string // containers a sandbox rule matches
}

// result is one result of the CLI's report.
type result struct {
	Policy    string `json:"policy"`
	Rule      string `json:"rule"`
	Result    string `json:"result"`
	Message   string `json:"message"`
	Resources []struct {
		Kind, Namespace, Name string
	} `json:"resources"`
}

type report struct {
	Kind    string   `json:"kind"`
	Results []result `json:"results"`
}

func TestKyvernoAgreesWithScan(t *testing.T) {
	bin := os.Getenv("WARD_KYVERNO_BIN")
	if bin == "" {
		t.Skip("WARD_KYVERNO_BIN not set: run `make test-kyverno`")
	}
	root := harness.RepoRoot(t)
	for _, tc := range []struct{ name, policy string }{
		{"default", ""},
		{"strict", filepath.Join(root, "internal/policyexport/testdata/strict-policy.yaml")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Load(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			node := manifest.DefaultNode(p)
			v, err := policyexport.NewExporter(p, node).ValidatingAdmissionPolicy()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			objs := corpus(t, root, p, node, filepath.Join(dir, "resources.yaml"))
			policies := map[string][]any{
				"clusterpolicy": {v.Kyverno()},
				"vap":           v.Objects(),
			}
			for form, docs := range policies {
				t.Run(form, func(t *testing.T) {
					pf := filepath.Join(dir, form+".yaml")
					var b bytes.Buffer
					if err := policyexport.WriteYAML(&b, docs); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(pf, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					results := apply(t, bin, pf, filepath.Join(dir, "resources.yaml"))
					compare(t, objs, results)
				})
			}
		})
	}
}

// corpus writes every workload object of the manifest corpus to path and
// returns them with ward scan's verdicts.
func corpus(t *testing.T, root string, p *policy.Policy, node manifest.Node, path string) []object {
	t.Helper()
	s, err := scan.New(p, node)
	if err != nil {
		t.Fatal(err)
	}
	objs, _, err := manifest.Read([]string{filepath.Join(root, "testdata/manifests")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	var docs bytes.Buffer
	for i := range objs {
		o := &objs[i]
		rs, err := s.Object(o)
		if err != nil {
			t.Fatal(err)
		}
		x := object{src: o, name: fmt.Sprintf("w%03d-%s", i, o.Name), ns: o.Namespace}
		if x.ns == "" {
			x.ns = "default"
		}
		x.deny, x.warn = scan.Admission(p, rs)
		for _, r := range rs {
			if r.Rejected() {
				x.rejected = append(x.rejected, r.Container)
				if r.Rule != "" {
					x.ownReject = append(x.ownReject, r.Container)
				}
			}
			for _, name := range r.Matched {
				if i := slices.IndexFunc(p.Rules, func(rule policy.Rule) bool { return rule.Name == name }); i >= 0 && p.Rules[i].Action == policy.Sandbox {
					x.sandboxed = append(x.sandboxed, r.Container)
					break
				}
			}
		}
		u, err := o.Unstructured()
		if err != nil {
			t.Fatal(err)
		}
		meta := u["metadata"].(map[string]any)
		meta["name"], meta["namespace"] = x.name, x.ns
		js, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		// JSON is YAML: one document each.
		docs.WriteString("---\n")
		docs.Write(js)
		docs.WriteString("\n")
		out = append(out, x)
	}
	if err := os.WriteFile(path, docs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// apply runs `kyverno apply` and returns its report's results. The CLI
// exits non-zero when a result fails, which is expected here.
func apply(t *testing.T, bin, policyFile, resources string) []result {
	t.Helper()
	cmd := exec.Command(bin, "apply", policyFile, "--resource", resources, "--policy-report", "--output-format", "json", "--audit-warn", "--remove-color")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	// The reports are printed one JSON document a line (the clustered one
	// first, then one per namespace after a "---" line), among the CLI's
	// own messages.
	var results []result
	for _, line := range strings.Split(stdout.String(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("reading the CLI's report: %v\n%.2000s", err, line)
		}
		results = append(results, r.Results...)
	}
	if len(results) == 0 {
		t.Fatalf("kyverno apply reported nothing: %v\nstdout:\n%.3000s\nstderr:\n%.3000s", err, stdout.String(), stderr.String())
	}
	t.Logf("kyverno apply %s: %d results", filepath.Base(policyFile), len(results))
	return results
}

// compare checks the CLI's verdict for every object against ward scan's.
func compare(t *testing.T, objs []object, results []result) {
	t.Helper()
	type verdict struct {
		deny, warn   bool
		denyMsg      []string
		warnMsg      []string
		seen, errors int
	}
	byName := map[string]*verdict{}
	for _, r := range results {
		if len(r.Resources) != 1 {
			continue
		}
		key := r.Resources[0].Namespace + "/" + r.Resources[0].Name
		v := byName[key]
		if v == nil {
			v = &verdict{}
			byName[key] = v
		}
		v.seen++
		reject := strings.Contains(r.Rule, policyexport.RejectName) || strings.Contains(r.Policy, policyexport.RejectName)
		switch r.Result {
		case "fail", "warn":
			if reject {
				v.deny = true
				v.denyMsg = append(v.denyMsg, r.Message)
			} else {
				v.warn = true
				v.warnMsg = append(v.warnMsg, r.Message)
			}
		case "error":
			v.errors++
			t.Errorf("%s: the engine failed: %s", key, r.Message)
		}
	}
	agree, denied, warned := 0, 0, 0
	for _, x := range objs {
		key := x.ns + "/" + x.name
		v := byName[key]
		if v == nil {
			t.Errorf("%s:%d %s %s: no result from the CLI", x.src.File, x.src.Line, x.src.Kind, x.src.Name)
			continue
		}
		if v.deny != x.deny || v.warn != x.warn {
			t.Errorf("%s:%d %s %s: kyverno deny=%v warn=%v (%v %v); ward scan reject=%v sandbox-rule=%v",
				x.src.File, x.src.Line, x.src.Kind, x.src.Name, v.deny, v.warn, v.denyMsg, v.warnMsg, x.deny, x.warn)
			continue
		}
		if named := namedContainers(v.denyMsg); named != nil && (!subset(x.ownReject, named) || !subset(named, x.rejected)) {
			t.Errorf("%s:%d %s %s: the denial names %v; ward scan rejects %v (%v by their own rule)", x.src.File, x.src.Line, x.src.Kind, x.src.Name, named, x.rejected, x.ownReject)
		}
		if named := namedContainers(v.warnMsg); named != nil && !equal(named, x.sandboxed) {
			t.Errorf("%s:%d %s %s: the warning names %v; a sandbox rule takes %v", x.src.File, x.src.Line, x.src.Kind, x.src.Name, named, x.sandboxed)
		}
		agree++
		if x.deny {
			denied++
		}
		if x.warn {
			warned++
		}
	}
	t.Logf("%d of %d objects agree with ward scan (%d denied, %d warned)", agree, len(objs), denied, warned)
}

// namedContainers collects the containers named by the messages'
// "(containers: ...)" tails; nil when no message has one (the engine
// printed the static message).
func namedContainers(msgs []string) []string {
	var names []string
	found := false
	for _, m := range msgs {
		i := strings.LastIndex(m, " (containers: ")
		if i < 0 {
			continue
		}
		found = true
		tail := m[i+len(" (containers: "):]
		if j := strings.Index(tail, ")"); j >= 0 {
			tail = tail[:j]
		}
		for _, n := range strings.Split(tail, ", ") {
			if n != "" {
				names = append(names, n)
			}
		}
	}
	if !found {
		return nil
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func subset(a, b []string) bool {
	for _, n := range a {
		if !slices.Contains(b, n) {
			return false
		}
	}
	return true
}

func equal(a, b []string) bool { return subset(a, b) && subset(b, a) }
