package workloads_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/policy"
)

// image is the corpus's image in every daemon.
const image = "ward-workloads/bookworm:1"

// dockerd is one of the harness's private Docker daemons, whose default
// runtime is the one under test: runc itself, or ward-runtime (over the
// same runc) with ward's default policy. Default, not --runtime, so that
// `docker build` runs its steps under it too.
type dockerd struct {
	*harness.Dockerd
	t       *testing.T
	name    string // "runc" or "ward"
	decided string // ward's decision log ("" for runc)
}

// startDockerd starts a daemon whose default runtime is runtime ("runc"
// or "ward") under a temporary directory, and imports the corpus image.
func startDockerd(t *testing.T, runtime, tarball string) *dockerd {
	dir, err := os.MkdirTemp("/var/tmp", "ward-wl-"+runtime+".")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("WARD_KEEP") == "" {
			os.RemoveAll(dir)
		}
	})
	// Under ward's user namespace, container root is an unprivileged host
	// ID: it must be able to reach what is below.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d := &dockerd{t: t, name: runtime}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	// Docker's own "runc" is the one on its PATH (Debian's 1.1.5): name
	// the pinned one.
	daemon := fmt.Sprintf(`{"default-runtime":"runc-pinned","runtimes":{"runc-pinned":{"path":%q}}}`, runc)
	if runtime == "ward" {
		ward := harness.WardBin(t, "ward-runtime")
		runsc, _ := exec.LookPath("runsc")
		d.decided = filepath.Join(dir, "decisions.jsonl")
		// ward's default policy, with this daemon's data root where a
		// node's /var/lib/docker would be: its per-container files are the
		// runtime's own (node.runtimeDirs), its named volumes volumes
		// (node.volumeDirs) and its overlays root filesystems
		// (node.rootfsDirs), as on a node.
		// WARD_WORKLOADS_POLICY starts from another policy file, to
		// measure another ward build (WARD_BIN) with its own default.
		base := policy.DefaultYAML()
		if p := os.Getenv("WARD_WORKLOADS_POLICY"); p != "" {
			if base, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
		}
		data := filepath.Join(dir, "data")
		pol := string(base)
		for _, l := range []struct{ key, dir string }{
			{"runtimeDirs", data + "/containers"}, {"volumeDirs", data + "/volumes"}, {"rootfsDirs", data + "/overlay2"},
		} {
			pol = strings.Replace(pol, "  "+l.key+":\n", "  "+l.key+":\n    - "+l.dir+"\n", 1)
			// An older policy (WARD_WORKLOADS_POLICY) may predate the
			// volume and rootfs lists; every one has runtimeDirs.
			if l.key == "runtimeDirs" && !strings.Contains(pol, l.dir) {
				t.Fatal("the policy has no node.runtimeDirs to extend")
			}
		}
		polPath := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(polPath, []byte(pol), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "runtime.yaml")
		body := "root: " + filepath.Join(dir, "ward-root") + "\n" + "policy: " + polPath + "\n" +
			"decisionLog: " + d.decided + "\n" +
			"backends:\n  runc: " + runc + "\n  runsc: " + runsc + "\n  runscFlags: [--platform=systrap]\n" +
			harness.UsernsConfig(t, dir)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// runtimeArgs carry ward's configuration: dockerd does not pass
		// its environment through containerd and the shim.
		daemon = fmt.Sprintf(`{"default-runtime":"ward","runtimes":{"ward":{"path":%q,"runtimeArgs":["--ward-config=%s"]}}}`, ward, cfg)
	}
	d.Dockerd = harness.StartDockerd(t, dir, "ward-wl-"+runtime, daemon)
	if r := d.Docker("import", tarball, image); r.Code != 0 {
		t.Fatalf("docker import: %s", r.Stderr)
	}
	return d
}
