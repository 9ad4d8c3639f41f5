package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// podman runs Debian's podman with every path of its own (storage, run
// root, temp, configuration) under the test's directory, and ward-runtime
// as its OCI runtime. Podman hands conmon a cleaned environment, so ward's
// configuration travels as a runtime flag.
type podman struct {
	e    *env
	args []string
	env  []string
}

func newPodman(e *env) *podman {
	t := e.t
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("podman not installed: run `make deps`: %v", err)
	}
	d := filepath.Join(e.dir, "podman")
	for _, sub := range []string{"storage", "run", "tmp", "networks"} {
		os.MkdirAll(filepath.Join(d, sub), 0o700)
	}
	conf := filepath.Join(d, "containers.conf")
	// default_ulimits: a pod's infra container takes no --ulimit (see
	// podmanRun for why every container needs them here).
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n"+
		"[network]\nnetwork_config_dir = \""+filepath.Join(d, "networks")+"\"\n"), 0o644)
	p := &podman{e: e, env: append(os.Environ(), "CONTAINERS_CONF="+conf)}
	p.args = []string{bin,
		"--root", filepath.Join(d, "storage"), "--runroot", filepath.Join(d, "run"), "--tmpdir", filepath.Join(d, "tmp"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--runtime", e.ward, "--runtime-flag", "ward-config=" + e.config,
	}
	// Podman's cgroupfs manager puts conmon and containers under
	// libpod_parent; remove it afterwards unless it was there before.
	hadParent := len(cgroupDirs("libpod_parent")) > 0
	t.Cleanup(func() {
		p.run("rm", "--all", "--force", "--time", "0")
		p.run("system", "reset", "--force")
		for _, m := range harness.MountsUnder(d) {
			exec.Command("umount", "-l", m).Run()
		}
		if !hadParent {
			harness.RemoveCgroups("libpod_parent")
		}
	})
	return p
}

// withConfig is p with ward-runtime under configuration cfg instead
// (Podman passes its runtime flags on every runtime call, so a container
// is created, run and removed under one of them).
func (p *podman) withConfig(cfg string) *podman {
	q := *p
	q.args = slices.Clone(p.args)
	for i, a := range q.args {
		if a == "ward-config="+p.e.config {
			q.args[i] = "ward-config=" + cfg
		}
	}
	return &q
}

func (p *podman) run(args ...string) (string, string, int) {
	return harness.Command(90*time.Second, p.env, append(slices.Clone(p.args), args...)...)
}

// podmanRun are `podman run`'s flags for every container here. This
// machine's root lacks CAP_SYS_RESOURCE, and podman's default ulimits
// (nofile 1048576) are above its hard limits, which runc cannot raise.
func podmanRun(extra ...string) []string {
	return append([]string{"run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}, extra...)
}

func TestPodman(t *testing.T) {
	e := newEnv(t)
	p := newPodman(e)
	img := filepath.Join(e.dir, "images")
	script := filepath.Join(harness.RepoRoot(t), "integration/image/build-busybox.sh")
	if out, err := exec.Command(script, img).CombinedOutput(); err != nil {
		t.Fatalf("building images: %v: %s", err, out)
	}
	for _, tar := range []string{"busybox.tar", "pause.tar"} {
		if _, stderr, code := p.run("load", "-i", filepath.Join(img, tar)); code != 0 {
			t.Fatalf("podman load %s: %s", tar, stderr)
		}
	}

	t.Run("hardened", func(t *testing.T) {
		out, stderr, code := p.run(append(podmanRun(), harness.BusyboxImage, "sh", "-c", statusScript)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		assertHardened(t, out)
	})

	t.Run("exec", func(t *testing.T) {
		_, stderr, code := p.run("run", "-d", "--name", "pm-x", "--network", "none",
			"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", harness.BusyboxImage, "sleep", "300")
		if code != 0 {
			t.Fatalf("run -d: %s", stderr)
		}
		defer p.run("rm", "--force", "--time", "0", "pm-x")
		out, stderr, code := p.run("exec", "--privileged", "pm-x", "sh", "-c", statusScript)
		if code != 0 {
			t.Fatalf("exec: exit %d: %s", code, stderr)
		}
		// `podman exec --privileged` asks for every capability; the exec
		// still gets the container's hardening.
		assertHardened(t, out)
	})

	t.Run("detection", func(t *testing.T) {
		// Podman's own default profile (containers-common) leaves
		// mount, umount2 and unshare to the capabilities: ward's filter
		// sees them with it on.
		testDetectionDoor(t, e, doorCLI{cli: p.run, run: podmanRun(), audit: p.withConfig(e.auditDetectionConfig()).run, auditRun: podmanRun()})
	})

	t.Run("gvisor", func(t *testing.T) {
		out, stderr, code := p.run(append(podmanRun("--annotation", "ward.dev/untrusted=true"), harness.BusyboxImage, "dmesg")...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(out, gvisorBanner) {
			t.Errorf("not gVisor's kernel: %q", out)
		}
	})

	t.Run("pod", func(t *testing.T) {
		// A pod's members name its infra container as their sandbox
		// (io.kubernetes.cri-o.SandboxID), which says nothing of being
		// one: ward refused every member ("no decision for its pod
		// sandbox"). They run now, in the infra container's user
		// namespace (mqueue in its IPC namespace needs it), with a
		// writable root and the pod's hostname; one sent to gVisor too.
		if _, stderr, code := p.run("pod", "create", "--name", "wp", "--network", "none", "--infra-image", "ward.test/pause:1"); code != 0 {
			t.Fatalf("pod create: %s", stderr)
		}
		defer p.run("pod", "rm", "-f", "-t", "0", "wp")
		out, stderr, code := p.run("run", "--rm", "--pod", "wp", harness.BusyboxImage, "sh", "-c", "touch /f && hostname && cat /proc/self/uid_map")
		if code != 0 {
			t.Fatalf("pod member: exit %d: %s", code, stderr)
		}
		if !strings.HasPrefix(out, "wp\n") || strings.Contains(out, " 0 4294967295") {
			t.Errorf("pod member: %q, want the pod's hostname and ward's mapping", out)
		}
		out, stderr, code = p.run("run", "--rm", "--pod", "wp", "--annotation", "ward.dev/untrusted=true", harness.BusyboxImage, "dmesg")
		if code != 0 || !strings.Contains(out, gvisorBanner) {
			t.Errorf("gVisor pod member: exit %d: %q %s", code, out, stderr)
		}
	})

	t.Run("joined-netns", func(t *testing.T) {
		testJoinedNetns(t, joinDoor{cli: p.run, run: []string{"run", "-d", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"},
			gvisor: []string{"--annotation", "ward.dev/untrusted=true"}})
	})

	t.Run("rejected", func(t *testing.T) {
		_, stderr, code := p.run(append(podmanRun("--privileged"), harness.BusyboxImage, "true")...)
		// Podman's status for "the OCI runtime failed" is 126.
		if code != 126 {
			t.Errorf("exit %d, want 126", code)
		}
		if !rejectMsg.MatchString(stderr) || !strings.Contains(stderr, "privileged") {
			t.Errorf("podman does not show ward's reason: %s", stderr)
		}
	})
}

// cgroupDirs lists a top-level cgroup in every hierarchy.
func cgroupDirs(name string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	return dirs
}
