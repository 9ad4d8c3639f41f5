package runtime_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
)

// TestContainerdRuncShim runs ward-runtime as the runc binary of
// containerd's own runc shim (runc options BinaryName), through ctr: the
// shim calls it with runc's command line, a JSON --log file it reads back
// on failure, and --process files for exec.
func TestContainerdRuncShim(t *testing.T) {
	e := newEnv(t)
	cd := harness.StartContainerd(t, harness.Config{NoCNI: true, Env: []string{"WARD_CONFIG=" + e.config}})
	root := filepath.Join(e.dir, "shim-root")
	ctr := func(args ...string) (string, string, error) {
		return cd.Ctr(args...)
	}
	runArgs := func(extra ...string) []string {
		return append([]string{"run", "--rm", "--runc-binary", e.ward, "--runc-root", root}, extra...)
	}

	t.Run("hardened", func(t *testing.T) {
		out, _, err := ctr(append(runArgs(), harness.BusyboxImage, "ctr-h", "sh", "-c", statusScript)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, cd.LogTail(20))
		}
		assertHardened(t, out)
		if d := e.decisionFor("ctr-h"); d == nil || d["action"] != "harden" {
			t.Errorf("decision log: %v", d)
		}
	})

	t.Run("exec", func(t *testing.T) {
		if _, _, err := ctr("run", "-d", "--runc-binary", e.ward, "--runc-root", root, harness.BusyboxImage, "ctr-x", "sleep", "300"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctr("task", "kill", "-s", "KILL", "ctr-x")
			for i := 0; i < 50; i++ {
				if _, _, err := ctr("task", "delete", "ctr-x"); err == nil {
					break
				}
			}
			ctr("container", "delete", "ctr-x")
		}()
		out, _, err := ctr("task", "exec", "--exec-id", "x1", "ctr-x", "sh", "-c", statusScript)
		if err != nil {
			t.Fatal(err)
		}
		assertHardened(t, out)
	})

	t.Run("gvisor", func(t *testing.T) {
		out, _, err := ctr(append(runArgs("--annotation", "ward.dev/untrusted=true"), harness.BusyboxImage, "ctr-g", "dmesg")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, cd.LogTail(20))
		}
		if !strings.Contains(out, gvisorBanner) {
			t.Errorf("not gVisor's kernel: %q", out)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		_, stderr, err := ctr(append(runArgs("--privileged"), harness.BusyboxImage, "ctr-r", "true")...)
		if err == nil {
			t.Fatal("a privileged container ran")
		}
		// The shim reads ward's line from the JSON --log file and puts it
		// in the error ctr prints.
		if !rejectMsg.MatchString(stderr) || !strings.Contains(stderr, "privileged") {
			t.Errorf("ctr's error does not carry ward's reason: %s", stderr)
		}
		ctr("container", "delete", "ctr-r")
	})
}
