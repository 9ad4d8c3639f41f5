package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/policy"
)

const corpus = "../../testdata/corpus/"

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn runs ward with stdin.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExplainTable(t *testing.T) {
	code, out, errOut := run(t, "explain", corpus+"cri-ordinary/container.json", "--pod", corpus+"cri-ordinary/sandbox.json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"FINDING", "SEVERITY", "ATT&CK", "REFERENCE", "WARD",
		"seccomp-unconfined", "fixed (seccomp)", "PSS restricted: Seccomp",
		"DECISION: HARDEN", "no-new-privileges  process.noNewPrivileges: set to true",
		"drift alerted, not refused", "\n  drift:  a program the container writes after it starts and then runs", "ward.dev/landlock: wx",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainExitStatus(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"explain", corpus + "cri-privileged/container.json", "--pod", corpus + "cri-privileged/sandbox.json"}, ExitRejected, "DECISION: REJECT"},
		{[]string{"explain", corpus + "cri-cap-sys-admin/container.json", "--pod", corpus + "cri-cap-sys-admin/sandbox.json"}, ExitOK, "DECISION: SANDBOX (gvisor)"},
		{[]string{"explain", corpus + "cri-hostpid/container.json", "--pod", corpus + "cri-hostpid/sandbox.json"}, ExitRejected, "host-pid (pod)"},
		{[]string{"explain", corpus + "cri-hostpid/container.json", "--without-pod"}, ExitOK, "pod-context-unknown"},
	}
	for _, tt := range tests {
		code, out, errOut := run(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("ward %v: exit %d (want %d), output lacks %q?\n%s%s", tt.args, code, tt.code, tt.want, out, errOut)
		}
	}
}

func TestExplainJSONIsStable(t *testing.T) {
	code, out, _ := run(t, "explain", "--json", corpus+"cri-docker-sock/container.json", "--pod", corpus+"cri-docker-sock/sandbox.json")
	if code != ExitRejected {
		t.Fatalf("exit %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if doc["action"] != "reject" || doc["backend"] != "runc" || doc["rule"] != "reject-host-takeover" {
		t.Errorf("action/backend/rule = %v/%v/%v", doc["action"], doc["backend"], doc["rule"])
	}
	findings, _ := doc["findings"].([]any)
	found := false
	for _, f := range findings {
		f := f.(map[string]any)
		for _, key := range []string{"id", "severity", "path", "attack", "references", "ward"} {
			if _, ok := f[key]; !ok {
				t.Errorf("finding %v lacks %q", f["id"], key)
			}
		}
		if f["id"] == policy.IDContainerSocketMount {
			found = true
			if f["severity"] != "critical" || !strings.HasPrefix(f["path"].(string), "mounts[") {
				t.Errorf("socket finding: %v", f)
			}
			if attack := f["attack"].([]any); len(attack) == 0 || attack[0] != "T1611" {
				t.Errorf("socket finding ATT&CK: %v", attack)
			}
		}
	}
	if !found {
		t.Error("no container-socket-mount finding")
	}
}

func TestExplainDiff(t *testing.T) {
	code, out, _ := run(t, "explain", "--diff", corpus+"ctr-run/config.json")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--- original", "+++ hardened", `-        "CAP_NET_RAW",`, `+    "seccomp": {`} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
}

func TestHardenWritesSpec(t *testing.T) {
	out := filepath.Join(t.TempDir(), "config.json")
	code, _, errOut := run(t, "harden", corpus+"ctr-run/config.json", "-o", out)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := bundle.Load(out, 0)
	if err != nil {
		t.Fatalf("hardened spec does not load: %v", err)
	}
	if !b.Spec.Process.NoNewPrivileges || b.Spec.Linux.Seccomp == nil {
		t.Error("hardened spec lacks no_new_privs or seccomp")
	}
	rejected := filepath.Join(t.TempDir(), "rejected.json")
	if code, _, errOut := run(t, "harden", corpus+"ctr-run-privileged/config.json", "-o", rejected); code != ExitRejected || !strings.Contains(errOut, "reject-host-takeover") {
		t.Errorf("privileged: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(rejected); !os.IsNotExist(err) {
		t.Error("a rejected spec was written")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "config.json")
	if err := os.WriteFile(bad, []byte(`{"ociVersion":"1.2.0","process":{"user":{"uid":"0"},"args":["sh"],"cwd":"/"},"root":{"path":"r"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nrules: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"explain", bad}, "process.user.uid"},
		{[]string{"harden", dir}, "process.user.uid"},
		{[]string{"explain", corpus + "runc-spec/config.json", "--policy", badPolicy}, "line 3"},
		{[]string{"explain", corpus + "cri-ordinary/container.json", "--pod", corpus + "cri-ordinary/container.json"}, "not a pod sandbox spec"},
		{[]string{"explain"}, "requires at least 1 arg(s)"},
		{[]string{"explain", "--bogus", "x"}, "unknown flag: --bogus"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"explian", "x"}, "Did you mean this?\n\texplain"},
		{[]string{"explain", "-json", "x"}, "Run 'ward explain --help' for usage."},
		{[]string{"policy", "check", badPolicy}, "line 3: rules[0].action"},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, tt.args...)
		if code != ExitBadInput || !strings.Contains(errOut, tt.want) {
			t.Errorf("ward %v: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, ExitBadInput, tt.want)
		}
	}
}

func TestAuditModeRunsEverything(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.yaml")
	doc := strings.Replace(string(policy.DefaultYAML()), "mode: enforce", "mode: audit", 1)
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "explain", corpus+"cri-privileged/container.json", "--pod", corpus+"cri-privileged/sandbox.json", "--policy", p, "--diff")
	if code != ExitOK || !strings.Contains(out, "AUDIT: would REJECT") || !strings.Contains(out, "(no changes)") {
		t.Errorf("audit: exit %d\n%s", code, out)
	}
}

func TestPolicyAndChecksCommands(t *testing.T) {
	code, out, _ := run(t, "policy", "default")
	if code != ExitOK {
		t.Fatalf("policy default: exit %d", code)
	}
	if _, err := policy.Parse([]byte(out), "printed"); err != nil {
		t.Errorf("printed default does not parse: %v", err)
	}
	code, out, _ = run(t, "checks", "--json")
	if code != ExitOK {
		t.Fatalf("checks: exit %d", code)
	}
	var checks struct {
		WardVersion string           `json:"wardVersion"`
		Checks      []map[string]any `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &checks); err != nil || len(checks.Checks) < 40 || checks.WardVersion == "" {
		t.Fatalf("checks --json: %d entries, version %q, %v", len(checks.Checks), checks.WardVersion, err)
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"explain", "--help"}, {"help", "explain"}} {
		code, out, _ = run(t, args...)
		if code != ExitOK || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if _, out, _ = run(t, "--help"); !strings.Contains(out, "Exit status") {
		t.Errorf("--help does not say the exit statuses:\n%s", out)
	}
}

var update = flag.Bool("update", false, "rewrite docs/checks.md")

func TestChecksDocIsCurrent(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	j, err := judge.New(p, judge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	writeChecksMarkdown(&buf, j.Evaluator().Checks(), p, j.Steps())
	const doc = "../../docs/checks.md"
	if *update {
		if err := os.WriteFile(doc, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(doc)
	if err != nil || !bytes.Equal(have, buf.Bytes()) {
		t.Errorf("%s is stale (%v); run go test ./internal/cli -update", doc, err)
	}
}

// TestExplainRewrittenBundle: a bundle a front door has hardened is
// explained from the caller's original beside ward's rewrite, and says so.
func TestExplainRewrittenBundle(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(corpus + "ctr-run-privileged/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Stand in for a front door's rewrite of it: the original moves to
	// .orig, and the new config.json is ordinary and marked.
	b, err := bundle.Load(corpus+"ctr-run/config.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Dir, b.ConfigPath = dir, filepath.Join(dir, "config.json")
	if err := bundle.WriteSpec(b); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "explain", dir)
	if code != ExitRejected || !strings.Contains(out, "DECISION: REJECT") || !strings.Contains(out, "judged the caller's original") {
		t.Errorf("exit %d, want the original's rejection and a note:\n%s%s", code, out, errOut)
	}
}

// TestDoctorPathUnderRoot: with --root and no --path, doctor looks for the
// runtimes of the tree it checks.
func TestDoctorPathUnderRoot(t *testing.T) {
	if got := underRoot("/mnt/node", "/usr/local/bin:/usr/bin:relative"); got != "/mnt/node/usr/local/bin:/mnt/node/usr/bin:/mnt/node/relative" {
		t.Errorf("underRoot = %q", got)
	}
	root := t.TempDir()
	runc := filepath.Join(root, "usr", "bin", "runc")
	if err := os.MkdirAll(filepath.Dir(runc), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runc, []byte("#!/bin/sh\necho 'runc version 1.4.4'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
	_, out, _ := run(t, "doctor", "--json", "--root", root)
	if !strings.Contains(out, "("+runc+")") {
		t.Errorf("doctor --root did not take the tree's runc %s:\n%s", runc, out)
	}
}
