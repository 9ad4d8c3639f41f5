package runtime_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dropAndRun copies a binary into /tmp and runs it: what a downloaded
// miner does. It prints the copy's exit status; busybox sh gives 126 when
// execve fails with EACCES.
const dropAndRun = `cp /bin/busybox /tmp/busybox && /tmp/busybox echo ran; echo rc=$?`

// withTmpfs mounts an exec-allowing tmpfs at /tmp (runc spec's rootfs is
// read-only), so that only Landlock can refuse the dropped binary.
func withTmpfs(s spec) {
	s["mounts"] = append(s["mounts"].([]any), map[string]any{
		"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "mode=1777"},
	})
}

// withWX opts the container into write-xor-execute (the default policy's
// landlock select).
func withWX(s spec) {
	withTmpfs(s)
	annotate("ward.dev/landlock", "wx")(s)
}

// TestDirectLandlock: through ward-runtime, with ward's default policy an
// ordinary container runs a binary it wrote to /tmp (a build job's) and
// an exec session can signal its first process; opted into wx with the
// annotation, the binary cannot be executed, neither by the container's
// process nor by an exec session. The same bundle under runc alone runs it.
func TestDirectLandlock(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")

	plain := e.newBundle("ll-plain", []string{"sh", "-c", dropAndRun}, withWX)
	out, err := exec.Command(e.runc, "--root", filepath.Join(e.dir, "runc-alone"), "run", "-b", plain, "ll-plain").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ran\nrc=0") {
		t.Fatalf("runc alone should run the dropped binary: %v %q", err, out)
	}

	d := e.newBundle("ll-default", []string{"sleep", "300"}, withTmpfs)
	if out, err := e.wardDetached(root, "create", "--bundle", d, "ll0"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "ll0")
	if _, stderr, code := e.wardRun(root, "start", "ll0"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	stdout, stderr, code := e.wardRun(root, "exec", "ll0", "sh", "-c", dropAndRun+"; kill -0 1 && echo signalled")
	if code != 0 || !strings.Contains(stdout, "ran\nrc=0") || !strings.Contains(stdout, "signalled") {
		t.Errorf("default policy, exec: exit %d, stdout %q, stderr %q; want the dropped binary run and pid 1 signalled", code, stdout, stderr)
	}

	// wx-audit: runs as by default, and the container's log says what wx
	// would refuse.
	a := e.newBundle("ll-audit", []string{"sh", "-c", dropAndRun}, func(s spec) {
		withTmpfs(s)
		annotate("ward.dev/landlock", "wx-audit")(s)
	})
	stdout, stderr, code = e.wardRun(root, "run", "--bundle", a, "ll-a")
	if code != 0 || !strings.Contains(stdout, "ran\nrc=0") || !strings.Contains(stderr, `"audit":true`) || !strings.Contains(stderr, "execute below /tmp") {
		t.Errorf("wx-audit: exit %d, stdout %q, stderr %q; want the binary run and the audit note", code, stdout, stderr)
	}

	b := e.newBundle("ll-run", []string{"sh", "-c", dropAndRun}, withWX)
	stdout, stderr, code = e.wardRun(root, "run", "--bundle", b, "ll1")
	if code != 0 || !strings.Contains(stdout, "rc=126") || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("run: exit %d, stdout %q, stderr %q; want rc=126 and Permission denied", code, stdout, stderr)
	}

	s := e.newBundle("ll-exec", []string{"sleep", "300"}, withWX)
	if out, err := e.wardDetached(root, "create", "--bundle", s, "ll2"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "ll2")
	if _, stderr, code := e.wardRun(root, "start", "ll2"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	stdout, stderr, code = e.wardRun(root, "exec", "ll2", "sh", "-c", dropAndRun)
	if code != 0 || !strings.Contains(stdout, "rc=126") || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("exec: exit %d, stdout %q, stderr %q; want rc=126 and Permission denied", code, stdout, stderr)
	}
}

// TestDirectLandlockGVisor: a container ward sends to gVisor gets no
// launcher, and the decision log says Landlock is not enforced.
func TestDirectLandlockGVisor(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("ll-gvisor", []string{"true"}, annotate("ward.dev/untrusted", "true"))
	if _, stderr, code := e.wardRun(root, "run", "--bundle", b, "llg"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	d := e.decisionFor("llg")
	if d == nil || d["backend"] != "gvisor" {
		t.Fatalf("decision log: %v", d)
	}
	notes, _ := d["notes"].([]any)
	if !slices.ContainsFunc(notes, func(n any) bool { s, _ := n.(string); return strings.HasPrefix(s, "Landlock not enforced (gvisor)") }) {
		t.Errorf("decision notes %v lack %q", notes, "Landlock not enforced (gvisor)")
	}
}
