package workloads_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/policy"
)

// cliTimeout bounds one client call (an image build included).
const cliTimeout = 5 * time.Minute

// privateDir makes a door's directory under /var/tmp (overlay needs a
// real filesystem), searchable by all: under ward's user namespace
// container root is an unprivileged host ID that must reach what is below.
func privateDir(t *testing.T, prefix string) string {
	dir, err := os.MkdirTemp("/var/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("WARD_KEEP") == "" {
			os.RemoveAll(dir)
		}
	})
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// wardPolicy writes ward's default policy with a private manager's
// directories added where a node's are listed (node.runtimeDirs: its
// per-container files; volumeDirs: its named volumes; rootfsDirs: its
// overlays; kubeletRoot; workloadDirs: the host directory a CI node's
// operator would give to workloads), and returns its path.
// WARD_WORKLOADS_POLICY starts from another policy file, to measure
// another ward build (WARD_BIN) with its own default.
func wardPolicy(t *testing.T, dir string, lists map[string][]string, kubeletRoot string) string {
	base := policy.DefaultYAML()
	if p := os.Getenv("WARD_WORKLOADS_POLICY"); p != "" {
		var err error
		if base, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	pol := string(base)
	for key, dirs := range lists {
		pol = strings.Replace(pol, "  "+key+": []\n", "  "+key+":\n", 1)
		if !strings.Contains(pol, "  "+key+":\n") {
			t.Fatalf("the policy has no node.%s to extend", key)
		}
		for _, d := range dirs {
			pol = strings.Replace(pol, "  "+key+":\n", "  "+key+":\n    - "+d+"\n", 1)
		}
	}
	if kubeletRoot != "" {
		pol = strings.Replace(pol, "  kubeletRoot: /var/lib/kubelet\n", "  kubeletRoot: "+kubeletRoot+"\n", 1)
	}
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wardConfig writes ward's node configuration for a door under dir (state,
// decision log, backends, private ID pool) and returns its path and the
// decision log's.
func wardConfig(t *testing.T, dir, pol string) (cfg, decided string) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	runsc, _ := exec.LookPath("runsc")
	decided = filepath.Join(dir, "decisions.jsonl")
	cfg = filepath.Join(dir, "ward.yaml")
	body := "stateDir: " + filepath.Join(dir, "ward-state") + "\npolicy: " + pol + "\n" +
		"decisionLog: " + decided + "\n" +
		"backends:\n  runc: {binary: " + runc + "}\n  gvisor: {binary: " + runsc + ", flags: [--platform=systrap]}\n" +
		"runtime:\n  root: " + filepath.Join(dir, "ward-root") + "\n" +
		harness.UsernsConfig(t, dir)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, decided
}

// startDockerd starts one of the harness's private Docker daemons whose
// default runtime is the one under test ("runc", or "ward": ward-runtime
// over the same runc with ward's default policy) and imports the corpus
// image. Default, not --runtime, so that `docker build` runs its steps
// under it too.
func startDockerd(t *testing.T, runtime, tarball string) *cliDoor {
	dir := privateDir(t, "ward-wl-docker-"+runtime+".")
	d := &cliDoor{door_: "docker", runtime_: runtime, dir: dir}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	// Docker's own "runc" is the one on its PATH (Debian's 1.1.5): name
	// the pinned one.
	daemon := fmt.Sprintf(`{"default-runtime":"runc-pinned","runtimes":{"runc-pinned":{"path":%q}}}`, runc)
	if runtime == "ward" {
		data := filepath.Join(dir, "data")
		pol := wardPolicy(t, dir, map[string][]string{
			"runtimeDirs": {data + "/containers"}, "volumeDirs": {data + "/volumes"}, "rootfsDirs": {data + "/overlay2"},
			"workloadDirs": {filepath.Join(dir, "host", workloadDir)},
		}, "")
		var cfg string
		cfg, d.decided = wardConfig(t, dir, pol)
		// runtimeArgs carry ward's configuration: dockerd does not pass
		// its environment through containerd and the shim.
		daemon = fmt.Sprintf(`{"default-runtime":"ward","runtimes":{"ward":{"path":%q,"runtimeArgs":["--ward-config=%s"]}}}`,
			harness.WardBin(t, "ward-runtime"), cfg)
	}
	dd := harness.StartDockerd(t, dir, "ward-wl-"+runtime, daemon)
	d.argv = []string{harness.DebianBin(t, "docker"), "-H", "unix://" + dd.Socket}
	d.env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if r := d.cli("import", tarball, image); r.Code != 0 {
		t.Fatalf("docker import: %s", r.Stderr)
	}
	return d
}
