package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wardRun runs ward-runtime with a private root, output through pipes
// (runsc writes a regular-file stdout from offset 0).
func (e *env) wardRun(root string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ward, append([]string{"--root", root}, args...)...)
	cmd.Env = e.environ()
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	// A container that outlives the command must not hang the test.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("ward-runtime %v: %v", args, err)
	}
	return o.String(), er.String(), code
}

// wardDetached runs a ward-runtime command whose container keeps running
// afterwards (create, run -d): the container inherits its stdio, so that is
// an append-mode file (runsc writes from offset 0 otherwise), not the
// test's pipes.
func (e *env) wardDetached(root string, args ...string) (string, error) {
	e.t.Helper()
	out := filepath.Join(e.dir, "detached.out")
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(e.ward, append([]string{"--root", root}, args...)...)
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	data, _ := os.ReadFile(out)
	return string(data), err
}

func TestDirectHardened(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("hardened", []string{"sh", "-c", statusScript}, nil)

	// The same bundle under runc alone is not hardened: the assertion can
	// tell the difference.
	plain := e.newBundle("plain", []string{"sh", "-c", statusScript}, nil)
	out, err := exec.Command(e.runc, "--root", filepath.Join(e.dir, "runc-alone"), "run", "-b", plain, "plain").Output()
	if err != nil {
		t.Fatalf("runc alone: %v", err)
	}
	// (runc spec already sets noNewPrivileges; it has no seccomp profile.)
	if st := status(string(out)); st["Seccomp"] != "0" {
		t.Fatalf("runc's own spec already has a seccomp filter? %q", out)
	}

	stdout, stderr, code := e.wardRun(root, "run", "--bundle", b, "h1")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	assertHardened(t, stdout)
	if st := status(stdout); st["CapEff"] != hardenedCapEff {
		t.Errorf("CapEff %s, want %s", st["CapEff"], hardenedCapEff)
	}
	if _, err := os.Stat(filepath.Join(b, "config.json.orig")); err != nil {
		t.Errorf("original spec not kept: %v", err)
	}
	d := e.decisionFor("h1")
	if d == nil || d["action"] != "harden" || d["door"] != "runtime" || d["event"] != "create" || d["bundle"] != b {
		t.Errorf("decision log: %v", d)
	}
	// runc removed the container when it exited; list agrees.
	if out, _, _ := e.wardRun(root, "list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after run: %q", out)
	}
}

func TestDirectLifecycleAndExec(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("life", []string{"sleep", "300"}, nil)
	g := e.newBundle("life-g", []string{"sleep", "300"}, annotate("ward.dev/untrusted", "true"))

	for _, c := range []struct{ id, bundle string }{{"l1", b}, {"l2", g}} {
		// create's stdio must not hold the test's pipes open: the
		// container keeps running after create returns.
		if out, err := e.wardDetached(root, "create", "--bundle", c.bundle, c.id); err != nil {
			t.Fatalf("create %s: %v: %s", c.id, err, out)
		}
		if _, stderr, code := e.wardRun(root, "start", c.id); code != 0 {
			t.Fatalf("start %s: %s", c.id, stderr)
		}
	}
	defer func() {
		for _, id := range []string{"l1", "l2"} {
			e.wardRun(root, "delete", "--force", id)
		}
	}()

	// list and state across both backends.
	out, stderr, code := e.wardRun(root, "list", "--format", "json")
	if code != 0 {
		t.Fatalf("list: %s", stderr)
	}
	var list []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list output %q: %v", out, err)
	}
	seen := map[string]string{}
	for _, c := range list {
		seen[c.ID] = c.Status
	}
	if seen["l1"] != "running" || seen["l2"] != "running" {
		t.Errorf("list: %s", out)
	}
	for _, id := range []string{"l1", "l2"} {
		out, stderr, code := e.wardRun(root, "state", id)
		var st struct{ ID, Status string }
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Status != "running" {
			t.Errorf("state %s: %q %s", id, out, stderr)
		}
	}

	// exec into the hardened container: inline args asking for
	// CAP_SYS_ADMIN still get the container's hardening.
	out, stderr, code = e.wardRun(root, "exec", "--cap", "CAP_SYS_ADMIN", "l1", "sh", "-c", statusScript)
	if code != 0 {
		t.Fatalf("exec: exit %d: %s", code, stderr)
	}
	assertHardened(t, out)
	// --process with a /proc/self/fd working directory is refused.
	pf := filepath.Join(e.dir, "process.json")
	os.WriteFile(pf, []byte(`{"args":["true"],"cwd":"/proc/self/fd/7","user":{"uid":0,"gid":0}}`), 0o644)
	if _, stderr, code := e.wardRun(root, "exec", "--process", pf, "l1"); code == 0 || !strings.Contains(stderr, "CVE-2024-21626") {
		t.Errorf("proc-fd exec: exit %d: %s", code, stderr)
	}
	// exec into the gVisor container goes to runsc.
	out, stderr, code = e.wardRun(root, "exec", "l2", "dmesg")
	if code != 0 || !strings.Contains(out, gvisorBanner) {
		t.Errorf("exec in gVisor: exit %d: %q %s", code, out, stderr)
	}

	for _, id := range []string{"l1", "l2"} {
		if _, stderr, code := e.wardRun(root, "kill", id, "KILL"); code != 0 {
			t.Errorf("kill %s: %s", id, stderr)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, id := range []string{"l1", "l2"} {
		if _, stderr, code := e.wardRun(root, "delete", "--force", id); code != 0 {
			t.Errorf("delete %s: %s", id, stderr)
		}
		if _, err := os.Stat(filepath.Join(root, "ward", id+".json")); !os.IsNotExist(err) {
			t.Errorf("record of %s left after delete", id)
		}
	}
	if out, _, _ := e.wardRun(root, "list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}

func TestDirectGVisor(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("gvisor", []string{"dmesg"}, annotate("ward.dev/untrusted", "true"))
	stdout, stderr, code := e.wardRun(root, "run", "--bundle", b, "g1")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, gvisorBanner) {
		t.Errorf("not gVisor's kernel: %q", stdout)
	}
	if _, err := os.Stat(filepath.Join(b, "config.json.orig")); !os.IsNotExist(err) {
		t.Error("a sandboxed spec was rewritten")
	}
	if d := e.decisionFor("g1"); d == nil || d["action"] != "sandbox" || d["backend"] != "gvisor" {
		t.Errorf("decision log: %v", d)
	}
}

func TestDirectRejected(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("rejected", []string{"true"}, withoutNamespace("pid"))
	logFile := filepath.Join(e.dir, "log.json")
	_, stderr, code := e.wardRun(root, "--log", logFile, "--log-format", "json", "run", "--bundle", b, "r1")
	// --root must come first; wardRun put it there.
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !rejectMsg.MatchString(stderr) || !strings.Contains(stderr, "host-pid") {
		t.Errorf("stderr %q", stderr)
	}
	data, _ := os.ReadFile(logFile)
	var line struct{ Level, Msg string }
	if err := json.Unmarshal(bytes.TrimSpace(data), &line); err != nil || line.Level != "error" || !rejectMsg.MatchString(line.Msg) {
		t.Errorf("log file %q: %v", data, err)
	}
	d := e.decisionFor("r1")
	if d == nil || d["action"] != "reject" || !strings.Contains(fmt.Sprint(d["decidingFindings"]), "host-pid") {
		t.Errorf("decision log: %v", d)
	}
	if out, _, _ := e.wardRun(root, "list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("a rejected container exists: %q", out)
	}
}
