package scan

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
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
