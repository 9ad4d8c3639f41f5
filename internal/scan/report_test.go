package scan

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// manifestsDir is the manifest corpus: the captured pods' manifests,
// workloads of every kind, and Helm- and kustomize-rendered files.
const manifestsDir = "../../testdata/manifests"

// scanCorpus scans the manifest corpus as `ward scan` does by default.
func scanCorpus(t *testing.T) *Report {
	t.Helper()
	return scanDir(t, manifestsDir)
}

// scanDir scans the manifests under dir as `ward scan` does by default.
func scanDir(t *testing.T, dir string) *Report {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(p, manifest.DefaultNode(p))
	if err != nil {
		t.Fatal(err)
	}
	objs, skipped, err := manifest.Read([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	return &Report{Policy: p, Results: rs, Skipped: len(skipped), Gate: Gate{Reject: true}}
}

func TestCorpusCoversEveryKind(t *testing.T) {
	var files []string
	err := filepath.WalkDir(manifestsDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Errorf("%d manifest files, want at least 30", len(files))
	}
	r := scanCorpus(t)
	kinds := map[string]int{}
	helm := 0
	for _, res := range r.Results {
		kinds[res.Kind]++
		if res.Source != "" {
			helm++
		}
	}
	for _, k := range []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the corpus", k)
		}
	}
	if helm == 0 {
		t.Error("no helm-rendered (# Source:) object in the corpus")
	}
	t.Logf("%d files, %d containers, kinds %v, %d from helm templates", len(files), len(r.Results), kinds, helm)
}

// TestGolden pins every format: the table over the whole corpus (every
// decision), the machine formats over the rendered charts (every field,
// at a size a reviewer reads).
func TestGolden(t *testing.T) {
	all, helm := scanCorpus(t), scanDir(t, manifestsDir+"/helm")
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			r := helm
			if f == Table {
				r = all
			}
			var b bytes.Buffer
			if err := r.Write(&b, f); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", "manifests."+string(f))
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/scan -update)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s (go test ./internal/scan -update to accept)", f, golden)
			}
		})
	}
}

// TestSARIFValidates checks the SARIF log against the SARIF 2.1.0 JSON
// schema that go-sarif embeds.
func TestSARIFValidates(t *testing.T) {
	r := scanCorpus(t)
	doc, err := r.SARIF()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	run := doc.Runs[0]
	if len(run.Results) == 0 || len(run.Tool.Driver.Rules) == 0 {
		t.Fatalf("%d results, %d rules", len(run.Results), len(run.Tool.Driver.Rules))
	}
	for _, res := range run.Results {
		reg := res.Locations[0].PhysicalLocation.Region
		if reg == nil || reg.StartLine == nil || *reg.StartLine < 1 {
			t.Errorf("result %s has no line", *res.RuleID)
		}
	}
	for _, rule := range run.Tool.Driver.Rules {
		if rule.Help == nil || rule.Help.Text == nil || *rule.Help.Text == "" {
			t.Errorf("rule %s has no help", *rule.ID)
		}
	}
	t.Logf("SARIF: %d rules, %d results, valid against the 2.1.0 schema", len(run.Tool.Driver.Rules), len(run.Results))
}

// TestJUnitParses reads the JUnit XML back: one testcase per container,
// failures exactly for the rejected ones.
func TestJUnitParses(t *testing.T) {
	r := scanCorpus(t)
	var b bytes.Buffer
	if err := r.Write(&b, JUnit); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for _, res := range r.Results {
		if res.Rejected() {
			rejected++
		}
	}
	if got.Tests != len(r.Results) || got.Failures != rejected {
		t.Errorf("tests=%d failures=%d, want %d and %d", got.Tests, got.Failures, len(r.Results), rejected)
	}
	n := 0
	for _, s := range got.Suites {
		n += len(s.Cases)
	}
	if n != got.Tests {
		t.Errorf("%d testcases, tests=%d", n, got.Tests)
	}
}

// TestPolicyReportMatchesCRD decodes the PolicyReport strictly into the
// fields of the wgpolicyk8s.io/v1alpha2 CRD and checks its enums.
func TestPolicyReportMatchesCRD(t *testing.T) {
	r := scanCorpus(t)
	var b bytes.Buffer
	if err := r.Write(&b, PolicyReport); err != nil {
		t.Fatal(err)
	}
	type ref struct {
		Kind, Namespace, Name, UID, APIVersion, ResourceVersion, FieldPath string
	}
	var rep struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Summary struct{ Pass, Fail, Warn, Error, Skip int } `json:"summary"`
		Results []struct {
			Source     string            `json:"source"`
			Policy     string            `json:"policy"`
			Rule       string            `json:"rule"`
			Category   string            `json:"category"`
			Severity   string            `json:"severity"`
			Result     string            `json:"result"`
			Scored     bool              `json:"scored"`
			Message    string            `json:"message"`
			Resources  []ref             `json:"resources"`
			Properties map[string]string `json:"properties"`
		} `json:"results"`
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.APIVersion != "wgpolicyk8s.io/v1alpha2" || rep.Kind != "PolicyReport" || rep.Metadata.Name == "" {
		t.Errorf("header %s %s %q", rep.APIVersion, rep.Kind, rep.Metadata.Name)
	}
	counts := map[string]int{}
	for _, res := range rep.Results {
		if res.Policy == "" {
			t.Errorf("result without policy: %+v", res)
		}
		if !slices.Contains([]string{"pass", "fail", "warn", "error", "skip"}, res.Result) {
			t.Errorf("result %q", res.Result)
		}
		if res.Severity != "" && !slices.Contains([]string{"critical", "high", "low", "medium", "info"}, res.Severity) {
			t.Errorf("severity %q", res.Severity)
		}
		if len(res.Resources) != 1 || res.Resources[0].Kind == "" || res.Resources[0].Name == "" {
			t.Errorf("resources %+v", res.Resources)
		}
		counts[res.Result]++
	}
	s := rep.Summary
	if s.Pass != counts["pass"] || s.Fail != counts["fail"] || s.Warn != counts["warn"] || s.Skip != counts["skip"] {
		t.Errorf("summary %+v, counted %v", s, counts)
	}
}

func TestGate(t *testing.T) {
	r := scanCorpus(t)
	if !r.Failed() {
		t.Error("the corpus has rejected pods: the reject gate must fail")
	}
	r.Gate = Gate{}
	if r.Failed() {
		t.Error("--fail-on none failed")
	}
	sev := policy.Critical
	r.Gate = Gate{Severity: &sev}
	var failing []string
	for i := range r.Results {
		if why := r.Gate.Fails(&r.Results[i]); why != "" {
			failing = append(failing, why)
		}
	}
	if len(failing) == 0 || !strings.Contains(failing[0], "critical") {
		t.Errorf("critical gate: %v", failing)
	}
}
