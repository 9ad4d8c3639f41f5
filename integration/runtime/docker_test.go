package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
)

// dockerd is the harness's private Docker daemon with ward-runtime added
// as runtime "ward".
type dockerd struct {
	*harness.Dockerd
	e *env
}

func startDockerd(e *env) *dockerd {
	// runtimeArgs carry ward's configuration: dockerd does not pass its
	// environment through containerd and the shim to the runtime.
	// ward-audit runs with detection in audit mode.
	daemonJSON := fmt.Sprintf(`{"runtimes":{"ward":{"path":%q,"runtimeArgs":["--ward-config=%s"]},"ward-audit":{"path":%[1]q,"runtimeArgs":["--ward-config=%[3]s"]}}}`,
		e.ward, e.config, e.auditDetectionConfig())
	return &dockerd{Dockerd: harness.StartDockerd(e.t, filepath.Join(e.dir, "docker"), "ward-it-docker", daemonJSON), e: e}
}

func (d *dockerd) logTail() string { return d.LogTail() }

func (d *dockerd) docker(args ...string) (string, string, int) {
	r := d.Docker(args...)
	return r.Stdout, r.Stderr, r.Code
}

// importBusybox gives dockerd an image without a registry: `docker import`
// of a busybox root filesystem.
func (d *dockerd) importBusybox() {
	t := d.e.t
	fs := filepath.Join(d.Dir, "rootfs")
	rootfs(t, fs)
	tarball := filepath.Join(d.Dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", fs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if _, stderr, code := d.docker("import", tarball, harness.BusyboxImage); code != 0 {
		t.Fatalf("docker import: %s", stderr)
	}
}

func TestDocker(t *testing.T) {
	e := newEnv(t)
	d := startDockerd(e)
	d.importBusybox()
	run := func(extra ...string) []string {
		return append([]string{"run", "--rm", "--runtime", "ward", "--network", "none"}, extra...)
	}

	t.Run("hardened", func(t *testing.T) {
		out, stderr, code := d.docker(append(run(), harness.BusyboxImage, "sh", "-c", statusScript)...)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, stderr, d.logTail())
		}
		assertHardened(t, out)
	})

	t.Run("exec", func(t *testing.T) {
		_, stderr, code := d.docker("run", "-d", "--name", "dk-x", "--runtime", "ward", "--network", "none", harness.BusyboxImage, "sleep", "300")
		if code != 0 {
			t.Fatalf("run -d: %s", stderr)
		}
		defer d.docker("rm", "-f", "dk-x")
		out, stderr, code := d.docker("exec", "--privileged", "dk-x", "sh", "-c", statusScript)
		if code != 0 {
			t.Fatalf("exec: exit %d: %s", code, stderr)
		}
		assertHardened(t, out)
	})

	t.Run("detection", func(t *testing.T) {
		// Docker's default profile refuses the mount family, unshare
		// and setns without CAP_SYS_ADMIN itself. ward compiles it and
		// composes it with its baseline, so those refusals reach ward's
		// supervisor, which answers them as the profile does (EPERM)
		// and alerts. Audit's "the call runs" needs no profile of
		// Docker's: with it, the profile's EPERM stands (below).
		unconfined := []string{"--security-opt", "seccomp=unconfined"}
		testDetectionDoor(t, e, doorCLI{
			cli: d.docker, run: run(),
			// Docker picks the runtime per container (the last --runtime wins).
			audit: d.docker, auditRun: run(append(unconfined, "--runtime", "ward-audit")...),
		})
		t.Run("audit under Docker's profile", func(t *testing.T) {
			cidfile := filepath.Join(t.TempDir(), "cid")
			out, stderr, code := d.docker(append(run("--runtime", "ward-audit", "--cidfile", cidfile), harness.BusyboxImage, "sh", "-c", "umount /ward-missing 2>&1; echo rc=$?")...)
			if code != 0 || !strings.Contains(out, "Operation not permitted") {
				t.Errorf("umount under audit with Docker's profile: exit %d, %q %q; want the profile's EPERM", code, out, stderr)
			}
			b, _ := os.ReadFile(cidfile)
			id := strings.TrimSpace(string(b))
			if a, ok := e.waitAlert(id, "mount", 0); !ok || a.OutputFields["ward.response"] != "deny" {
				t.Errorf("umount under audit with Docker's profile: alert %v (found %v), want one answered deny: %v", a.OutputFields, ok, e.alerts())
			}
			// ward, not runc, compiled Docker's profile.
			compiled := false
			for _, dec := range e.decisions() {
				if b, _ := json.Marshal(dec); dec["containerID"] == id && strings.Contains(string(b), "compiled the container's own profile") {
					compiled = true
				}
			}
			if !compiled {
				t.Errorf("the decision of %s does not say ward compiled Docker's profile", id)
			}
		})
	})

	t.Run("gvisor", func(t *testing.T) {
		// Docker 20.10 has no --annotation; a dangerous capability is what
		// sends this container to gVisor (policy rule sandbox-kernel-surface).
		out, stderr, code := d.docker(append(run("--cap-add", "SYS_ADMIN"), harness.BusyboxImage, "dmesg")...)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, stderr, d.logTail())
		}
		if !strings.Contains(out, gvisorBanner) {
			t.Errorf("not gVisor's kernel: %q", out)
		}
	})

	t.Run("joined-netns", func(t *testing.T) {
		// Docker 20.10 has no --annotation: SYS_ADMIN sends it to gVisor.
		testJoinedNetns(t, joinDoor{cli: d.docker, run: []string{"run", "-d", "--runtime", "ward"}, gvisor: []string{"--cap-add", "SYS_ADMIN"}})
	})

	t.Run("host-network-gvisor", func(t *testing.T) {
		// gVisor in the node's network namespace would take the node's
		// addresses or be handed its network stack (runsc with no network
		// namespace in the spec gave it loopback only): refused, naming
		// both findings and what to change.
		_, stderr, code := d.docker("run", "--rm", "--runtime", "ward", "--network", "host", "--cap-add", "SYS_ADMIN", harness.BusyboxImage, "true")
		if code != 125 {
			t.Fatalf("exit %d, want docker's 125: %s", code, stderr)
		}
		for _, want := range []string{"sandbox-host-network", "host-network", "cap-sys-admin", "without host networking"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("refusal does not say %q: %s", want, stderr)
			}
		}
	})

	t.Run("rejected", func(t *testing.T) {
		_, stderr, code := d.docker(append(run("--privileged"), harness.BusyboxImage, "true")...)
		if code == 0 {
			t.Fatal("a privileged container ran")
		}
		// docker run's status when the daemon fails to start the container.
		if code != 125 {
			t.Errorf("exit %d, want docker's 125", code)
		}
		if !rejectMsg.MatchString(stderr) || !strings.Contains(stderr, "privileged") {
			t.Errorf("docker does not show ward's reason: %s", stderr)
		}
		t.Logf("docker run --privileged: exit %s: %s", strconv.Itoa(code), strings.TrimSpace(stderr))
	})
}
