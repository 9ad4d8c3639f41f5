package scan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// captureMeta is what agreement needs from a corpus case's meta.json.
type captureMeta struct {
	ContainerdRoot  string `json:"containerdRoot"`
	ContainerdState string `json:"containerdState"`
	KubeletRoot     string `json:"kubeletRoot"`
}

// readMeta reads a CRI corpus case's meta.json.
func readMeta(t *testing.T, dir string) captureMeta {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m captureMeta
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// captureRuntimeDirs are p's runtime directories and the capture's
// containerd sandbox directories.
func (m captureMeta) runtimeDirs(p *policy.Policy) []string {
	return append(slices.Clone(p.Node.RuntimeDirs),
		m.ContainerdRoot+"/io.containerd.grpc.v1.cri/sandboxes", m.ContainerdState+"/io.containerd.grpc.v1.cri/sandboxes")
}

// containerFile is the file of a CRI corpus case that holds the captured
// spec of the named container: container.json for the app, and
// container-NAME.json for the pod's other containers.
func containerFile(name string) string {
	if name == "app" {
		return "container.json"
	}
	return "container-" + name + ".json"
}

// nodeVerdict judges a CRI corpus case's captured specs as the shim does:
// the sandbox first, then the container in file with the sandbox's
// verdict, under the default policy told where the capture kept its
// per-pod files.
func nodeVerdict(t *testing.T, dir, file string) judge.Verdict {
	t.Helper()
	m := readMeta(t, dir)
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	p.Node.KubeletRoot = m.KubeletRoot
	p.Node.RuntimeDirs = m.runtimeDirs(p)
	j, err := judge.New(p, judge.Options{UsernsPool: []userns.Range{userns.Placeholder()}})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bundle.Load(filepath.Join(dir, "sandbox.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := j.Spec(policy.Input{Spec: sb.Spec, Workload: sb.Workload, Userns: placeholderUserns("")})
	if err != nil {
		t.Fatal(err)
	}
	app, err := bundle.Load(filepath.Join(dir, file), 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := j.Spec(policy.Input{Spec: app.Spec, Workload: app.Workload, Pod: sv.PodContext(), Userns: placeholderUserns("/proc/<sandbox pid>/ns/user")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ids(fs []string) string {
	slices.Sort(fs)
	return strings.Join(slices.Compact(fs), " ")
}

// captureNode is the capture machine: no AppArmor, the default policy's
// directories.
func captureNode(t *testing.T) (*policy.Policy, manifest.Node) {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	n := manifest.DefaultNode(p)
	n.AppArmor = false
	return p, n
}

// TestAgreementWithNode is the promise of ward scan: for every pod of the
// captured CRI corpus, the manifest that produced it gets, from the scan,
// for each container the same decision and the same findings (ID and spec
// path) as the shim gave that container's node-side spec. Pods with more
// than one container (cri-mixed-*) hold containers with different
// decisions.
func TestAgreementWithNode(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/corpus/cri-*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no CRI corpus: %v", err)
	}
	p, n := captureNode(t)
	s, err := New(p, n)
	if err != nil {
		t.Fatal(err)
	}
	agreed, containers := 0, 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			rs := scanCase(t, s, name)
			specs, _ := filepath.Glob(filepath.Join(dir, "container*.json"))
			if len(rs) != len(specs) {
				t.Fatalf("%d containers in the manifest, %d captured specs", len(rs), len(specs))
			}
			for _, got := range rs {
				containers++
				want := nodeVerdict(t, dir, containerFile(got.Container))
				if got.Action != want.Action || got.Backend != want.Backend {
					t.Errorf("%s: scan: %s/%s (%s); node: %s/%s (%s)", got.Container, got.Action, got.Backend, got.Reason, want.Action, want.Backend, want.Reason)
				}
				var gi, wi []string
				for _, f := range got.Findings {
					gi = append(gi, f.ID+"@"+f.Path)
				}
				for _, f := range want.Findings {
					// Which disks a privileged container is handed depends on
					// the node's devices, which no manifest says; the decision
					// (privileged is rejected) does not.
					if f.Check.ID == policy.IDHostDiskDevice {
						continue
					}
					wi = append(wi, f.Check.ID+"@"+f.Path)
				}
				if ids(gi) != ids(wi) {
					t.Errorf("%s: findings differ\n scan: %s\n node: %s", got.Container, ids(gi), ids(wi))
				}
			}
			if !t.Failed() {
				agreed++
			}
		})
	}
	t.Logf("%d of %d captured pods (%d containers): same decision, findings and spec paths", agreed, len(dirs), containers)
}

// scanCase scans the manifest of CRI corpus case name.
func scanCase(t *testing.T, s *Scanner, name string) []Result {
	t.Helper()
	objs, _, err := manifest.Read([]string{filepath.Join("../../testdata/manifests/corpus", name+".yaml")}, nil)
	if err != nil {
		t.Fatalf("every CRI corpus case needs its manifest: %v", err)
	}
	rs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
