package wardruntime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/policy"
)

// fakeBackends writes two executables standing in for runc and runsc: the
// tests look at the command lines ward-runtime would exec, not at what a
// runtime does with them (integration/runtime runs the real ones).
func fakeBackends(t *testing.T) (runc, runsc string) {
	dir := t.TempDir()
	runc, runsc = filepath.Join(dir, "runc"), filepath.Join(dir, "runsc")
	for _, p := range []string{runc, runsc} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return runc, runsc
}

type harness struct {
	t        *testing.T
	root     string
	runc     string
	runsc    string
	env      *Env
	stdout   bytes.Buffer
	stderr   bytes.Buffer
	execPath string
	execArgv []string
	// state is the node configuration's stateDir; config its file.
	state, config string
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, root: filepath.Join(t.TempDir(), "root")}
	h.runc, h.runsc = fakeBackends(t)
	vars := map[string]string{
		"WARD_CONFIG": filepath.Join(t.TempDir(), "none.yaml"),
		"WARD_RUNC":   h.runc,
		"WARD_RUNSC":  h.runsc,
	}
	// Defaults, then the environment above, with the default policy minus
	// its user namespace: these tests look at command lines, and the
	// userns step (ID pools, idmapped mounts) has its own tests.
	h.state, h.config = filepath.Join(t.TempDir(), "state"), vars["WARD_CONFIG"]
	os.WriteFile(vars["WARD_CONFIG"], []byte("policy: "+noUsernsPolicy(t)+"\nstateDir: "+h.state+"\n"), 0o644)
	h.env = &Env{
		Stdin: strings.NewReader(""), Stdout: &h.stdout, Stderr: &h.stderr,
		Getenv: func(k string) string { return vars[k] },
		Exec: func(path string, argv, env []string) error {
			h.execPath, h.execArgv = path, argv
			return nil
		},
	}
	return h
}

func (h *harness) main(args ...string) int {
	h.execPath, h.execArgv = "", nil
	h.stdout.Reset()
	h.stderr.Reset()
	return Main(append([]string{"--root", h.root}, args...), h.env)
}

// writeBundle writes a runc-spec-like bundle, edited by edit.
func writeBundle(t *testing.T, edit func(s *specs.Spec)) string {
	dir := t.TempDir()
	s := &specs.Spec{
		Version: "1.2.0",
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Effective: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Permitted: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			},
		},
		Hostname: "c",
		Mounts:   []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   policy.CoreMaskedPaths(),
			ReadonlyPaths: policy.CoreReadonlyPaths(),
		},
	}
	if edit != nil {
		edit(s)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readSpec(t *testing.T, path string) *specs.Spec {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestCreateHardensAndRoutesToRunc(t *testing.T) {
	h := newHarness(t)
	b := writeBundle(t, nil)
	orig, _ := os.ReadFile(filepath.Join(b, "config.json"))
	if code := h.main("--log", filepath.Join(b, "log.json"), "--log-format", "json",
		"create", "--bundle", b, "--pid-file", "/p", "--no-pivot", "c1"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	want := []string{h.runc, "--root", filepath.Join(h.root, "runc"), "--log", filepath.Join(b, "log.json"),
		"--log-format", "json", "create", "--bundle", b, "--pid-file", "/p", "--no-pivot", "c1"}
	if !slices.Equal(h.execArgv, want) || h.execPath != h.runc {
		t.Errorf("exec %s %q\nwant %q", h.execPath, h.execArgv, want)
	}
	s := readSpec(t, filepath.Join(b, "config.json"))
	if s.Process.NoNewPrivileges != true || s.Linux.Seccomp == nil {
		t.Errorf("config.json not hardened: nnp=%v seccomp=%v", s.Process.NoNewPrivileges, s.Linux.Seccomp != nil)
	}
	if kept, _ := os.ReadFile(filepath.Join(b, "config.json.orig")); !bytes.Equal(kept, orig) {
		t.Error("config.json.orig is not the original, byte for byte")
	}
	r, err := store{dir: filepath.Join(h.root, "ward")}.load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Backend != policy.Runc || r.Runtime != h.runc || r.Bundle != b || r.Decision.Action != policy.Harden {
		t.Errorf("record %+v", r)
	}
	// Later subcommands reach the same backend and root.
	for _, sub := range [][]string{{"start", "c1"}, {"state", "c1"}, {"kill", "c1", "KILL"}, {"pause", "c1"}, {"ps", "c1", "-ef"}} {
		if code := h.main(sub...); code != 0 {
			t.Fatalf("%s: exit %d", sub[0], code)
		}
		want := append([]string{h.runc, "--root", filepath.Join(h.root, "runc"), "--log-format", "text"}, sub...)
		if !slices.Equal(h.execArgv, want) {
			t.Errorf("%s: exec %q, want %q", sub[0], h.execArgv, want)
		}
	}
}

func TestCreateRoutesUntrustedToRunsc(t *testing.T) {
	h := newHarness(t)
	b := writeBundle(t, func(s *specs.Spec) { s.Annotations = map[string]string{"ward.dev/untrusted": "true"} })
	orig, _ := os.ReadFile(filepath.Join(b, "config.json"))
	if code := h.main("create", "--bundle", b, "--no-new-keyring", "--preserve-fds", "0", "g1"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	runscRoot := filepath.Join(h.root, "runsc")
	want := []string{h.runsc, "--platform=systrap", "--root", runscRoot, "--log-format", "text", "create", "--bundle", b, "g1"}
	if !slices.Equal(h.execArgv, want) {
		t.Errorf("exec %q\nwant %q", h.execArgv, want)
	}
	if now, _ := os.ReadFile(filepath.Join(b, "config.json")); !bytes.Equal(now, orig) {
		t.Error("a sandboxed spec was rewritten")
	}
	h.main("start", "g1")
	if h.execPath != h.runsc || !slices.Contains(h.execArgv, runscRoot) {
		t.Errorf("start went to %q", h.execArgv)
	}
}

func TestRejectLogsInCallersFormat(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			h := newHarness(t)
			b := writeBundle(t, func(s *specs.Spec) {
				s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
					return n.Type == specs.PIDNamespace
				})
			})
			logPath := filepath.Join(b, "log.json")
			code := h.main("--log", logPath, "--log-format", format, "create", "--bundle", b, "r1")
			if code == 0 || h.execArgv != nil {
				t.Fatalf("rejected container started: exit %d, exec %q", code, h.execArgv)
			}
			if !strings.Contains(h.stderr.String(), "ward rejected container r1: findings [host-pid]; reject-host-takeover: ") {
				t.Errorf("stderr %q", h.stderr.String())
			}
			data, _ := os.ReadFile(logPath)
			line := strings.TrimSpace(string(data))
			if format == "json" {
				var l logLine
				if err := json.Unmarshal(data, &l); err != nil || l.Level != "error" || !strings.Contains(l.Msg, "host-pid") {
					t.Errorf("log %q: %v", data, err)
				}
				if _, err := time.Parse(time.RFC3339, l.Time); err != nil {
					t.Errorf("log time: %v", err)
				}
			} else if !strings.HasPrefix(line, `time="`) || !strings.Contains(line, ` level=error msg="ward rejected container r1`) {
				t.Errorf("log %q", line)
			}
			if _, err := os.Stat(filepath.Join(h.root, "ward", "r1.json")); !errors.Is(err, os.ErrNotExist) {
				t.Error("a rejected container has a record")
			}
			if _, err := os.Stat(filepath.Join(b, "config.json.orig")); !errors.Is(err, os.ErrNotExist) {
				t.Error("a rejected bundle was rewritten")
			}
		})
	}
}

func TestFailClosed(t *testing.T) {
	h := newHarness(t)
	// Broken bundle: nothing is exec'd.
	b := t.TempDir()
	os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"ociVersion":"1.2.0","process":`), 0o644)
	if code := h.main("create", "--bundle", b, "x"); code == 0 || h.execArgv != nil {
		t.Errorf("broken bundle: exit %d, exec %q", code, h.execArgv)
	}
	// Broken policy file.
	pol := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pol, []byte("apiVersion: nope\n"), 0o644)
	b = writeBundle(t, nil)
	if code := h.main("--ward-policy", pol, "create", "--bundle", b, "x"); code == 0 || h.execArgv != nil {
		t.Errorf("broken policy: exit %d, exec %q", code, h.execArgv)
	}
	// A sandbox backend that is not installed.
	b = writeBundle(t, func(s *specs.Spec) { s.Annotations = map[string]string{"ward.dev/untrusted": "true"} })
	if code := h.main("--ward-runsc", "/nonexistent/runsc", "create", "--bundle", b, "x"); code == 0 || h.execArgv != nil {
		t.Errorf("missing runsc: exit %d, exec %q", code, h.execArgv)
	}
	if !strings.Contains(h.stderr.String(), "sandbox-untrusted") {
		t.Errorf("missing runsc: stderr does not name the rule: %q", h.stderr.String())
	}
	// Bad container IDs never become paths.
	if code := h.main("create", "--bundle", b, "../escape"); code == 0 {
		t.Error("id ../escape accepted")
	}
	// An exec into a container ward has no record of.
	if code := h.main("exec", "ghost", "true"); code == 0 || h.execArgv != nil {
		t.Errorf("exec without record: exit %d, exec %q", code, h.execArgv)
	}
}

func TestExecIsJudged(t *testing.T) {
	h := newHarness(t)
	b := writeBundle(t, nil)
	if code := h.main("create", "--bundle", b, "c1"); code != 0 {
		t.Fatalf("create: exit %d: %s", code, h.stderr.String())
	}
	// Inline args asking for CAP_SYS_ADMIN and privileges.
	if code := h.main("exec", "--detach", "--cap", "CAP_SYS_ADMIN", "--no-new-privs=false", "-e", "X=1", "c1", "sh", "-c", "id"); code != 0 {
		t.Fatalf("exec: exit %d: %s", code, h.stderr.String())
	}
	i := slices.Index(h.execArgv, "--process")
	if i < 0 || h.execArgv[len(h.execArgv)-1] != "c1" || !slices.Contains(h.execArgv, "--detach") {
		t.Fatalf("exec argv %q", h.execArgv)
	}
	for _, w := range h.execArgv {
		if w == "--cap" || w == "CAP_SYS_ADMIN" || strings.HasPrefix(w, "--no-new-privs") {
			t.Errorf("a process flag reached the backend: %q", h.execArgv)
		}
	}
	p, err := readProcess(h.execArgv[i+1])
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(p.Capabilities.Effective, "CAP_SYS_ADMIN") || slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("exec kept CAP_SYS_ADMIN: %+v", p.Capabilities)
	}
	if !p.NoNewPrivileges || !slices.Equal(p.Args, []string{"sh", "-c", "id"}) || !slices.Contains(p.Env, "X=1") {
		t.Errorf("process %+v", p)
	}
	// A --process file with a /proc/self/fd cwd is refused.
	pf := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(pf, []byte(`{"args":["id"],"cwd":"/proc/self/fd/7","user":{"uid":0,"gid":0}}`), 0o644)
	if code := h.main("exec", "--process", pf, "c1"); code == 0 || h.execArgv != nil {
		t.Errorf("proc-fd cwd: exit %d, exec %q", code, h.execArgv)
	}
	// Unknown fields in a --process file are refused, not dropped.
	os.WriteFile(pf, []byte(`{"args":["id"],"cwd":"/","user":{"uid":0,"gid":0},"surprise":1}`), 0o644)
	if code := h.main("exec", "--process", pf, "c1"); code == 0 {
		t.Error("unknown --process field accepted")
	}
}

func TestDeleteForgetsOnlyAfterBackend(t *testing.T) {
	h := newHarness(t)
	b := writeBundle(t, nil)
	h.main("create", "--bundle", b, "c1")
	st := store{dir: filepath.Join(h.root, "ward")}
	// A failing backend delete keeps the record for a retry.
	os.WriteFile(h.runc, []byte("#!/bin/sh\nexit 7\n"), 0o755)
	if code := h.main("delete", "c1"); code != 7 {
		t.Errorf("delete exit %d, want the backend's 7", code)
	}
	if _, err := st.load("c1"); err != nil {
		t.Errorf("record gone after a failed delete: %v", err)
	}
	os.WriteFile(h.runc, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	if code := h.main("delete", "--force", "c1"); code != 0 {
		t.Errorf("delete --force exit %d", code)
	}
	if _, err := st.load("c1"); !errors.Is(err, errNoRecord) {
		t.Errorf("record kept after delete: %v", err)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	st := store{dir: filepath.Join(t.TempDir(), "ward")}
	r := &Record{ID: "abc", Backend: policy.GVisor, Runtime: "/bin/runsc", Flags: []string{"--platform=systrap"},
		Root: "/run/x/runsc", Bundle: "/b", Decision: RecordDecision{Action: policy.Sandbox, Backend: policy.GVisor, Rule: "r", Skip: []string{"seccomp"}},
		Created: time.Unix(1, 0).UTC()}
	if err := st.save(r); err != nil {
		t.Fatal(err)
	}
	got, err := st.load("abc")
	if err != nil {
		t.Fatal(err)
	}
	if got.Root != r.Root || got.Decision.Rule != "r" || !slices.Equal(got.Decision.Skip, r.Decision.Skip) || !got.Created.Equal(r.Created) {
		t.Errorf("round trip: %+v", got)
	}
	if d := got.report(); d.Action != policy.Sandbox || d.Backend != policy.GVisor || d.Rule != "r" {
		t.Errorf("decision %+v", d)
	}
	if tg := got.target(); !tg.runsc() || len(tg.unsupported) == 0 {
		t.Errorf("a gVisor record of an earlier release: %+v", tg)
	}
	ents, _ := os.ReadDir(st.dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if err := st.save(&Record{ID: bad}); err == nil {
			t.Errorf("id %q saved", bad)
		}
	}
	// A record whose content names another container is refused.
	os.WriteFile(st.path("other"), []byte(`{"id":"abc"}`), 0o600)
	if _, err := st.load("other"); err == nil {
		t.Error("mismatched record loaded")
	}
	all, _ := st.all()
	if len(all) != 1 || all[0].ID != "abc" {
		t.Errorf("all %v", all)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "runtime.yaml")
	os.WriteFile(file, []byte("policy: /file.yaml\ndecisionLog: /file.log\nbackends:\n  runsc: /file/runsc\n  runscFlags: [--platform=ptrace]\n"), 0o644)
	env := map[string]string{"WARD_CONFIG": file, "WARD_POLICY": "/env.yaml"}
	g, _, _ := parseGlobals([]string{"--ward-decision-log", "/flag.log", "state", "x"})
	cfg, err := loadConfig(g, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := cfg.Table()
	if cfg.Policy != "/env.yaml" || cfg.DecisionLog != "/flag.log" || tb["gvisor"].Binary != "/file/runsc" ||
		tb["runc"].Binary != "runc" || !slices.Equal(tb["gvisor"].Flags, []string{"--platform=ptrace"}) || cfg.Runtime.Root != nodeconfig.DefaultRuntimeRoot {
		t.Errorf("config %+v", cfg)
	}
	// A misspelt key, or a named file that is missing, is an error.
	os.WriteFile(file, []byte("polcy: /x\n"), 0o644)
	if _, err := loadConfig(g, func(k string) string { return env[k] }); err == nil {
		t.Error("misspelt key accepted")
	}
	env["WARD_CONFIG"] = filepath.Join(dir, "missing.yaml")
	if _, err := loadConfig(g, func(k string) string { return env[k] }); err == nil {
		t.Error("missing named config accepted")
	}
}

func TestLogLineFormats(t *testing.T) {
	at := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	j := &logger{format: "json", now: at}
	if got := string(j.line("error", `a "quoted" msg`)); got != `{"level":"error","msg":"a \"quoted\" msg","time":"2026-01-02T03:04:05Z"}`+"\n" {
		t.Errorf("json %q", got)
	}
	tx := &logger{format: "text", now: at}
	if got := string(tx.line("error", `a "quoted" msg`)); got != `time="2026-01-02T03:04:05Z" level=error msg="a \"quoted\" msg"`+"\n" {
		t.Errorf("text %q", got)
	}
	// Without --log, the line goes to stderr once.
	var stderr bytes.Buffer
	l := &logger{format: "text", now: at, stderr: &stderr}
	l.error("boom")
	if strings.Count(stderr.String(), "boom") != 1 {
		t.Errorf("stderr %q", stderr.String())
	}
	// With --log, the formatted line goes to the file and the bare message
	// to stderr, as runc does.
	stderr.Reset()
	l.path = filepath.Join(t.TempDir(), "log")
	l.error("boom")
	data, _ := os.ReadFile(l.path)
	if !strings.Contains(string(data), `msg="boom"`) || stderr.String() != "boom\n" {
		t.Errorf("file %q stderr %q", data, stderr.String())
	}
}

func TestBackendIsNotWardItself(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	if err := notSelf(self); err == nil {
		t.Error("ward-runtime accepted itself as its backend")
	}
}

// noUsernsPolicy writes the default policy with the user-namespace step off.
func noUsernsPolicy(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, policy.DefaultWithoutUserns(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeNode is Env.Spawn for tests: instead of the node's supervisor
// process, a goroutine that reads hand-overs on the control socket it was
// given (lock, then socket) with the real reader, records them and
// answers ok. spawns counts the starts.
type fakeNode struct {
	t      *testing.T
	mu     sync.Mutex
	spawns int
	jobs   []nodeJob
	pidfds int
}

func (f *fakeNode) spawn(args []string, extra []*os.File) error {
	if !slices.Equal(args, []string{nodeCommand}) || len(extra) != 2 {
		f.t.Errorf("spawned %q with %d descriptors, want the node's supervisor with its lock and socket", args, len(extra))
		return nil
	}
	f.mu.Lock()
	f.spawns++
	f.mu.Unlock()
	lock, err := dupFile(extra[0])
	if err != nil {
		return err
	}
	fl, err := net.FileListener(extra[1])
	if err != nil {
		return err
	}
	f.t.Cleanup(func() { fl.Close(); lock.Close() })
	go func() {
		for {
			conn, err := fl.(*net.UnixListener).AcceptUnix()
			if err != nil {
				return
			}
			job, sock, pidfd, err := readJob(conn, os.Geteuid(), make([]byte, nodeMaxJob+1))
			answer := "ok"
			if err != nil {
				answer = err.Error()
			}
			f.mu.Lock()
			if err == nil {
				f.jobs = append(f.jobs, job)
				if pidfd != nil {
					f.pidfds++
				}
			}
			f.mu.Unlock()
			closeFiles(sock, pidfd)
			conn.Write([]byte(answer))
			conn.Close()
		}
	}()
	return nil
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// TestForegroundRunStartsReaper: a foreground run hands the container to
// the node's supervisor, starting one the first time only, with the
// caller's global flags, the container, the reaper's information (reap,
// the record's creation time) and a pidfd (no seccomp supervisor here: no
// ward-init beside the test binary); a detached or kept one leaves the
// cleanup to delete and hands nothing over.
func TestForegroundRunStartsReaper(t *testing.T) {
	h := newHarness(t)
	node := &fakeNode{t: t}
	h.env.Spawn, h.env.NodeDir = node.spawn, t.TempDir()
	b := writeBundle(t, nil)
	for i, tt := range []struct {
		flags []string
		want  bool
	}{
		{nil, true},
		{[]string{"-d"}, false},
		{[]string{"--detach"}, false},
		{[]string{"--keep"}, false},
		{nil, true},
	} {
		node.mu.Lock()
		node.jobs = nil
		node.mu.Unlock()
		id := fmt.Sprintf("c%d", i)
		args := append(append([]string{"run", "--bundle", b}, tt.flags...), id)
		if code := h.main(args...); code != 0 {
			t.Fatalf("run %v: exit %d: %s", tt.flags, code, h.stderr.String())
		}
		// The first hand-over goes unanswered (the supervisor was just
		// started): the fake reads it in its own time.
		var got []nodeJob
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			node.mu.Lock()
			got = node.jobs
			node.mu.Unlock()
			if len(got) > 0 || !tt.want || time.Now().After(deadline) {
				break
			}
		}
		if !tt.want {
			if len(got) != 0 {
				t.Errorf("run %v handed over: %+v", tt.flags, got)
			}
			continue
		}
		rec, err := (&ctx{g: globals{root: h.root, rootSet: true}}).records().load(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !slices.Equal(got[0].Args, []string{"--root", h.root}) || got[0].ID != id || got[0].Sock != "-" ||
			!got[0].Pidfd || !got[0].Info.Reap || got[0].Info.Created != rec.Created.UnixNano() || got[0].Info.Container != nil {
			t.Errorf("run %v: handed over %+v, want %s with the reaper's information and a pidfd", tt.flags, got, id)
		}
	}
	if node.spawns != 1 || node.pidfds != 2 {
		t.Errorf("%d supervisors started, %d pidfds received; want 1 and 2", node.spawns, node.pidfds)
	}
}

// TestNodeRefusesMalformedJob: a hand-over whose descriptors do not match
// what it says (a socket announced, none sent) or whose container ID is
// not one is refused, and its descriptors closed.
func TestNodeRefusesMalformedJob(t *testing.T) {
	h := newHarness(t)
	node := &fakeNode{t: t}
	h.env.Spawn, h.env.NodeDir = node.spawn, t.TempDir()
	c := &ctx{env: h.env}
	// The first hand-over starts the supervisor and is not answered.
	if err := c.handToNode(nodeJob{ID: "first", Sock: "-"}, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		node.mu.Lock()
		n := len(node.jobs)
		node.mu.Unlock()
		if n == 1 {
			break
		}
	}
	for _, job := range []nodeJob{
		{ID: "a", Sock: "/run/ward-supervisor/rt-x.sock"},
		{ID: "../a", Sock: "-"},
		{ID: "a", Sock: "-", Pidfd: true},
	} {
		if err := c.handToNode(job, nil); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%+v: %v, want refused", job, err)
		}
	}
	if len(node.jobs) != 1 {
		t.Errorf("taken: %+v, want the first alone", node.jobs)
	}
}

// fakeVMPolicy sends untrusted workloads to a backend named fakevm.
func fakeVMPolicy(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	pol := strings.Replace(string(policy.DefaultWithoutUserns()), "  - name: sandbox-untrusted", "  - name: sandbox-untrusted-vm", 1)
	i := strings.Index(pol, "sandbox-untrusted-vm")
	pol = pol[:i] + strings.Replace(pol[i:], "backend: gvisor", "backend: fakevm", 1)
	if err := os.WriteFile(p, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBackendIsOneEntry: a backend the node configuration adds (one entry,
// no code) is routed to by the policy like a built-in one, under a state
// root of its own, with the runc flags it lacks dropped.
func TestBackendIsOneEntry(t *testing.T) {
	h := newHarness(t)
	cfg := "policy: " + fakeVMPolicy(t) + "\nstateDir: " + h.state + "\nbackends:\n  fakevm:\n    kind: oci-runtime\n    binary: " + h.runc +
		"\n    flags: [--vm]\n    unsupported: [no-new-keyring]\n    sandbox: true\n    enforces: {seccomp: true}\n"
	os.WriteFile(h.config, []byte(cfg), 0o644)
	b := writeBundle(t, func(s *specs.Spec) { s.Annotations = map[string]string{"ward.dev/untrusted": "true"} })
	if code := h.main("create", "--bundle", b, "--no-new-keyring", "v1"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	want := []string{h.runc, "--vm", "--root", filepath.Join(h.root, "fakevm"), "--log-format", "text", "create", "--bundle", b, "v1"}
	if !slices.Equal(h.execArgv, want) {
		t.Errorf("exec %q\nwant %q", h.execArgv, want)
	}
	h.main("start", "v1")
	if !slices.Contains(h.execArgv, filepath.Join(h.root, "fakevm")) {
		t.Errorf("start went to %q", h.execArgv)
	}
	// A policy naming a backend the node does not have fails closed, with
	// the rule named.
	os.WriteFile(h.config, []byte("policy: "+fakeVMPolicy(t)+"\nstateDir: "+h.state+"\n"), 0o644)
	if code := h.main("create", "--bundle", b, "v2"); code == 0 || !strings.Contains(h.stderr.String(), "sandbox-untrusted-vm") {
		t.Errorf("unknown backend: exit %d: %s", code, h.stderr.String())
	}
}

// corpusBundle writes a spec of testdata/corpus as a bundle of its own.
func corpusBundle(t *testing.T, corpus, file string) string {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "corpus", corpus, file))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOwnSandboxSharesPodNetwork: ward-runtime runs a runc pod's NET_ADMIN
// init container in its own gVisor sandbox with --network=host on every
// runsc call (runsc sets the network up at start, not create), so the
// pod's IP stays on the pod's interface; the pod's runc app gets no such
// flag.
func TestOwnSandboxSharesPodNetwork(t *testing.T) {
	h := newHarness(t)
	const corpus = "cri-mixed-init-gvisor"
	// The corpus's containers name their sandbox by its captured ID.
	s := readSpec(t, filepath.Join(corpusBundle(t, corpus, "container-mesh-init.json"), "config.json"))
	sb := s.Annotations["io.kubernetes.cri.sandbox-id"]
	if code := h.main("create", "--bundle", corpusBundle(t, corpus, "sandbox.json"), sb); code != 0 {
		t.Fatalf("sandbox %s: exit %d: %s", sb, code, h.stderr.String())
	}
	if code := h.main("create", "--bundle", corpusBundle(t, corpus, "container-mesh-init.json"), "init1"); code != 0 {
		t.Fatalf("mesh-init: exit %d: %s", code, h.stderr.String())
	}
	for _, sub := range [][]string{nil, {"start", "init1"}, {"kill", "init1", "KILL"}} {
		if sub != nil {
			h.main(sub...)
		}
		if h.execPath != h.runsc || !slices.Contains(h.execArgv, "--network=host") {
			t.Errorf("%v: exec %q, want runsc with --network=host", sub, h.execArgv)
		}
	}
	if code := h.main("create", "--bundle", corpusBundle(t, corpus, "container.json"), "app1"); code != 0 {
		t.Fatalf("app: exit %d: %s", code, h.stderr.String())
	}
	if h.execPath != h.runc || slices.ContainsFunc(h.execArgv, func(a string) bool { return strings.HasPrefix(a, "--network") }) {
		t.Errorf("app beside it: exec %q, want runc", h.execArgv)
	}
}
