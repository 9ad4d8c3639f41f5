package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/version"
)

// TestExplainPodUnknown: an app container judged without its pod used to
// say HARDEN (exit 0), a false "may run" for a hostPID pod. It is refused,
// loudly, unless --without-pod says the pod is knowingly left out.
func TestExplainPodUnknown(t *testing.T) {
	code, out, errOut := run(t, "explain", corpus+"cri-hostpid/container.json")
	if code != ExitBadInput || out != "" || !strings.Contains(errOut, "pod unknown") || !strings.Contains(errOut, "--pod SANDBOX") {
		t.Errorf("without --pod: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = run(t, "harden", corpus+"cri-hostpid/container.json")
	if code != ExitBadInput || out != "" {
		t.Errorf("harden without --pod: exit %d, wrote %q", code, out)
	}
	code, out, _ = run(t, "explain", corpus+"cri-hostpid/container.json", "--without-pod")
	if code != ExitOK || !strings.Contains(out, "pod-context-unknown") {
		t.Errorf("--without-pod: exit %d\n%s", code, out)
	}
	if code, _, errOut = run(t, "explain", corpus+"cri-hostpid/container.json", "--without-pod", "--pod", corpus+"cri-hostpid/sandbox.json"); code != ExitBadInput {
		t.Errorf("--pod with --without-pod: exit %d %s", code, errOut)
	}
}

// TestExplainPodOfAnotherSandbox: a --pod whose sandbox ID differs from the
// container's was accepted, judging the container with another pod's
// namespaces (here: an ordinary pod's, hiding hostPID).
func TestExplainPodOfAnotherSandbox(t *testing.T) {
	code, out, errOut := run(t, "explain", corpus+"cri-hostpid/container.json", "--pod", corpus+"cri-ordinary/sandbox.json")
	if code != ExitBadInput || out != "" || !strings.Contains(errOut, "belongs to sandbox 1ba2123924de, but --pod") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut = run(t, "explain", corpus+"ctr-run/config.json", "--pod", corpus+"cri-ordinary/sandbox.json"); code != ExitBadInput || !strings.Contains(errOut, "standalone") {
		t.Errorf("--pod for a standalone container: exit %d, %s", code, errOut)
	}
}

// TestExplainStdinAndSeveralFiles: "-" reads a spec from stdin; several
// inputs are judged in turn, one JSON document each, and the exit status
// is the worst.
func TestExplainStdinAndSeveralFiles(t *testing.T) {
	spec, err := os.ReadFile(corpus + "ctr-run/config.json")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runIn(t, string(spec), "explain", "-")
	if code != ExitOK || !strings.Contains(out, "DECISION: HARDEN") {
		t.Fatalf("stdin: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runIn(t, string(spec), "explain", "--json", "-", corpus+"ctr-run-privileged/config.json")
	if code != ExitRejected {
		t.Errorf("worst of harden and reject: exit %d", code)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var actions []string
	for dec.More() {
		var d Document
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.WardVersion != version.Version() || d.Source == "" {
			t.Errorf("document lacks version or source: %q %q", d.WardVersion, d.Source)
		}
		actions = append(actions, string(d.Action))
	}
	if strings.Join(actions, ",") != "harden,reject" {
		t.Errorf("actions %v", actions)
	}
	code, _, errOut = runIn(t, "{", "explain", "-")
	if code != ExitBadInput || !strings.Contains(errOut, "(stdin):1:2: malformed JSON") {
		t.Errorf("bad stdin: exit %d %s", code, errOut)
	}
}

func TestVersionEverywhere(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := run(t, args...)
		if code != ExitOK || !strings.Contains(out, "ward version "+version.Version()) {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	code, out, _ := run(t, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); code != ExitOK || err != nil || v["wardVersion"] != version.Version() {
		t.Errorf("version --json: %d %v %q", code, err, out)
	}
	_, out, _ = run(t, "doctor", "--json", "--root", t.TempDir())
	var d struct {
		WardVersion string           `json:"wardVersion"`
		Results     []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.WardVersion != version.Version() || len(d.Results) == 0 {
		t.Errorf("doctor --json: %v %q %d", err, d.WardVersion, len(d.Results))
	}
}

func TestCompletionAndManPages(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := run(t, "completion", sh)
		if code != ExitOK || !strings.Contains(out, "explain") && !strings.Contains(out, "__ward") {
			t.Errorf("completion %s: exit %d %s", sh, code, errOut)
		}
	}
	// Completion of a subcommand name, as the shell scripts ask it.
	if _, out, _ := run(t, "__complete", "exp"); !strings.Contains(out, "explain") {
		t.Errorf("__complete exp: %q", out)
	}
	dir := t.TempDir()
	if code, _, errOut := run(t, "man", dir); code != ExitOK {
		t.Fatalf("man: %s", errOut)
	}
	page, err := os.ReadFile(filepath.Join(dir, "ward-explain.1"))
	if err != nil || !strings.Contains(string(page), "without-pod") {
		t.Errorf("ward-explain.1: %v", err)
	}
}

func TestPolicyCheckSeveralAndStdin(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runIn(t, "extends: default\nmode: audit\n", "policy", "check", "-", "../../contrib/policy/node-policy.yaml", bad)
	if code != ExitBadInput || !strings.Contains(out, "-: valid (audit mode") || !strings.Contains(out, "node-policy.yaml: valid") || !strings.Contains(errOut, "bad.yaml: line 1: apiVersion") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}
