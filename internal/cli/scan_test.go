package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestScanExitStatus(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"scan", "../../testdata/manifests/corpus/cri-ordinary.yaml"}, ExitOK},
		{[]string{"scan", "../../testdata/manifests/corpus/cri-privileged.yaml"}, ExitRejected},
		{[]string{"scan", "--fail-on", "none", "../../testdata/manifests/corpus/cri-privileged.yaml"}, ExitOK},
		{[]string{"scan", "--fail-on", "low", "../../testdata/manifests/corpus/cri-ordinary.yaml"}, ExitRejected},
		{[]string{"scan", "--fail-on", "bogus", "../../testdata/manifests/corpus/cri-ordinary.yaml"}, ExitBadInput},
		{[]string{"scan", "--format", "xml", "../../testdata/manifests/corpus/cri-ordinary.yaml"}, ExitBadInput},
		{[]string{"scan", "no-such-file.yaml"}, ExitBadInput},
		{[]string{"scan"}, ExitBadInput},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := Main(tt.args, strings.NewReader(""), &out, &errb); got != tt.want {
				t.Errorf("exit %d, want %d; stderr %s", got, tt.want, errb.String())
			}
		})
	}
}

func TestScanJSON(t *testing.T) {
	var out, errb bytes.Buffer
	Main([]string{"scan", "--format", "json", "../../testdata/manifests/corpus/cri-hostpid.yaml"}, strings.NewReader(""), &out, &errb)
	var doc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Results    []struct {
			Kind, Name, Namespace, Container, Action, Backend string
			Findings                                          []struct{ ID, Severity, Path, Field string }
		} `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if doc.APIVersion != "ward.dev/v1alpha1" || doc.Kind != "ScanReport" || len(doc.Results) != 1 {
		t.Fatalf("%+v", doc)
	}
	r := doc.Results[0]
	if r.Action != "reject" || r.Kind != "Pod" || r.Container != "app" {
		t.Errorf("%+v", r)
	}
	found := false
	for _, f := range r.Findings {
		if f.ID == "host-pid" && f.Field == "spec.hostPID" && f.Path == "linux.namespaces" {
			found = true
		}
	}
	if !found {
		t.Errorf("no host-pid finding at spec.hostPID: %+v", r.Findings)
	}
}

func TestPolicyExportAndAttack(t *testing.T) {
	var out, errb bytes.Buffer
	if got := Main([]string{"policy", "export", "--format", "validatingadmissionpolicy"}, strings.NewReader(""), &out, &errb); got != ExitOK || !strings.Contains(out.String(), "kind: ValidatingAdmissionPolicyBinding") {
		t.Errorf("export: exit %d, %s", got, errb.String())
	}
	out.Reset()
	if got := Main([]string{"attack", "--navigator"}, strings.NewReader(""), &out, &errb); got != ExitOK || !strings.Contains(out.String(), `"techniqueID": "T1611"`) {
		t.Errorf("attack: exit %d, %s", got, errb.String())
	}
}
