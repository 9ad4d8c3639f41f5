// Package escape_test runs ward's escape probes (integration/escape/probes)
// in real CRI pods through a private containerd, for every workload shape
// on plain runc, on ward (hardened) and on ward routing to gVisor, and
// checks that the host is unchanged afterwards and that benign workloads
// keep working. WARD_ESCAPE_REPORT=path writes the security matrix
// (`make escape-report` writes docs/security-matrix.md).
package escape_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/escape/probes"
	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/install"
	"github.com/ward-runtime/ward/policy"
)

// suite is one private containerd with the three handlers, and the host
// fixtures the probes look for.
type suite struct {
	*harness.Containerd
	// decisionLogs maps a ward handler to its decision log.
	decisionLogs map[string]string
	fix          fixtures
	marker       string
	abstract     string
	// accepted counts connections to the host's sockets, by socket.
	accepted map[string]chan struct{}
	// alerts is the ward handler's alert file; receiver gets the same
	// alerts over HTTP, as Falcosidekick would.
	alerts   string
	receiver *receiver
}

func startSuite(t *testing.T) *suite {
	t.Helper()
	harness.Require(t)
	shimBin := harness.WardBin(t, "containerd-shim-ward-v2")
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		t.Fatalf("runsc not on PATH (integration/install-deps.sh runsc): %v", err)
	}
	dir := harness.NewDir(t)
	s := &suite{decisionLogs: map[string]string{}, accepted: map[string]chan struct{}{}}

	// ward-probe goes into the image as the image's own file, beside a
	// setuid-root copy (the non-root shape's setuid binary).
	extra := filepath.Join(dir, "image-extra")
	buildProbe(t, filepath.Join(extra, "usr/local/bin"))

	// The marker: a host file the host-filesystem probe looks for.
	s.marker = filepath.Join(dir, "host-marker")
	if err := os.WriteFile(s.marker, []byte(probes.MarkerContent), 0o644); err != nil {
		t.Fatal(err)
	}
	// An abstract socket in the host's network namespace, as containerd
	// shims had before CVE-2020-15257 was fixed.
	s.abstract = fmt.Sprintf("ward-escape-containerd-shim-%d", os.Getpid())
	s.listen(t, "@"+s.abstract)
	// The docker.sock stand-in: a listener of this test at a rootless
	// Docker socket path (/run/user/<id>/docker.sock), which ward judges
	// like /run/docker.sock. The real /run/docker.sock is not this test's
	// to create or to hand to containers on a shared machine.
	sockDir, err := os.MkdirTemp("/run/user", "ward-escape-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	s.fix.DockerSock = filepath.Join(sockDir, "docker.sock")
	s.listen(t, s.fix.DockerSock)
	s.fix.RenamedSock = filepath.Join(dir, "srv", "api.sock")
	if err := os.MkdirAll(filepath.Dir(s.fix.RenamedSock), 0o755); err != nil {
		t.Fatal(err)
	}
	s.startFakeDockerd(t, dir, s.fix.RenamedSock)
	s.fix.RootAlias = aliasHostRoot(t)

	// ward: the default policy. ward-gvisor: what `ward install` gives
	// its handler, every workload to gVisor (rejections still win).
	wardCfg := filepath.Join(dir, "ward-shim.yaml")
	gvisorCfg := filepath.Join(dir, "ward-gvisor-shim.yaml")
	gvisorPolicy := filepath.Join(dir, "policy-gvisor.yaml")
	sp, err := install.SandboxPolicy(policy.GVisor)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, gvisorPolicy, string(sp))
	backends := "backends:\n  runc: {binary: " + runc + "}\n  gvisor: {binary: " + runsc + "}\n" + harness.UsernsConfig(t, dir)
	s.receiver = startReceiver(t)
	s.alerts = filepath.Join(dir, "ward", "alerts.jsonl")
	writeFile(t, wardCfg, "stateDir: "+filepath.Join(dir, "ward")+"\nalerts:\n  http: "+s.receiver.URL+"/\n"+backends)
	writeFile(t, gvisorCfg, "stateDir: "+filepath.Join(dir, "ward-gvisor")+"\npolicy: "+gvisorPolicy+"\n"+backends)
	s.decisionLogs["ward"] = filepath.Join(dir, "ward", "decisions.jsonl")
	s.decisionLogs["ward-gvisor"] = filepath.Join(dir, "ward-gvisor", "decisions.jsonl")

	s.Containerd = harness.StartContainerd(t, harness.Config{
		Dir:        dir,
		ImageExtra: extra,
		Env:        []string{"WARD_CONFIG=" + wardCfg},
		Runtimes: []harness.Runtime{
			{
				Name: "ward", Path: shimBin,
				Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward"), "SystemdCgroup": false},
				PodAnnotations: []string{"ward.dev/*"},
			},
			{
				Name: "ward-gvisor", Type: "io.containerd.ward.v2", Path: shimBin,
				Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward-gvisor"), "WardConfig": gvisorCfg},
				PodAnnotations: []string{"ward.dev/*"},
			},
		},
	})
	return s
}

// buildProbe builds the static ward-probe into dir, and its setuid-root
// copy ward-probe-suid.
func buildProbe(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ward-probe")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./ward-probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ward-probe: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	suid := bin + "-suid"
	if err := os.WriteFile(suid, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(suid, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
}

// listen serves a unix socket on the host (a path, or @name for an
// abstract one) that accepts connections and closes them unread; each
// connection is counted, so ESCAPED is seen from both sides.
func (s *suite) listen(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan struct{}, 1024)
	s.accepted[addr] = ch
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
}

// drain returns how many connections addr accepted since the last call.
func (s *suite) drain(addr string) int {
	n := 0
	for {
		select {
		case <-s.accepted[addr]:
			n++
		default:
			return n
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run is one (shape, runtime) cell: the pod started or was refused, the
// probes' outcomes, and ward's decision.
type run struct {
	Shape, Runtime string
	// Err is the refusal (or failure) of the pod's start; "" if it ran.
	Err      string
	Outcomes map[string]probes.Outcome
	// Decision is ward's decision for the app container (or for the
	// sandbox when the pod was refused there); nil for runc.
	Decision *decisionlog.Entry
	// Connections are what the host's sockets accepted during the run.
	Connections map[string]int
}

func (r run) admitted() bool { return r.Err == "" }

// runShape starts the shape's pod on a handler with ward-probe as its
// app container, waits for it to exit and collects its verdicts.
func (s *suite) runShape(t *testing.T, sh shape, handler string) run {
	t.Helper()
	name := sh.ID + "-" + handler
	p := harness.Pod{
		Name:    name,
		Handler: handler,
		Command: []string{"/usr/local/bin/ward-probe"},
		Env:     map[string]string{"WARD_PROBE_MARKER": s.marker, "WARD_PROBE_ABSTRACT": s.abstract},
	}
	sh.pod(&p, s.fix)
	r := run{Shape: sh.ID, Runtime: handler, Outcomes: map[string]probes.Outcome{}, Connections: map[string]int{}}
	rp, err := s.RunPod(p)
	defer func() {
		if rp.SandboxID != "" {
			if err := s.RemovePod(rp.SandboxID); err != nil {
				t.Errorf("%s: removing pod: %v", name, err)
			}
		}
	}()
	if err != nil {
		r.Err = err.Error()
	} else if err := s.waitExited(rp.ContainerID, 2*time.Minute); err != nil {
		t.Errorf("%s: %v", name, err)
		r.Err = err.Error()
	} else {
		out, stderr, err := s.Crictl("logs", rp.ContainerID)
		if err != nil {
			t.Errorf("%s: crictl logs: %v", name, err)
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var o probes.Outcome
			if json.Unmarshal(sc.Bytes(), &o) == nil && o.ID != "" {
				r.Outcomes[o.ID] = o
			}
		}
		if len(r.Outcomes) != len(probes.All()) {
			t.Errorf("%s: %d of %d probes answered; stdout:\n%s\nstderr:\n%s", name, len(r.Outcomes), len(probes.All()), out, stderr)
		}
	}
	for addr := range s.accepted {
		r.Connections[addr] = s.drain(addr)
	}
	if log, ok := s.decisionLogs[handler]; ok {
		r.Decision = decisionFor(t, log, name)
	}
	return r
}

// waitExited waits for a container to exit with status 0.
func (s *suite) waitExited(id string, timeout time.Duration) error {
	code, err := s.exitCode(id, timeout)
	if err == nil && code != 0 {
		err = fmt.Errorf("container %s exited with status %d", id, code)
	}
	return err
}

// decisionFor returns the last decision a ward handler logged for the
// pod's app container, or for its sandbox when there is none (a pod
// refused at its sandbox never gets an app container).
func decisionFor(t *testing.T, path, pod string) *decisionlog.Entry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("decision log: %v", err)
	}
	var app, sandbox *decisionlog.Entry
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		var e decisionlog.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("decision log line %q: %v", l, err)
		}
		if e.Event != "create" || e.Workload.Pod != pod {
			continue
		}
		if e.Workload.Container != "" {
			app = &e
		} else {
			sandbox = &e
		}
	}
	if app != nil {
		return app
	}
	return sandbox
}

// TestEscapeSuite runs every shape on every runtime, then the benign
// corpus, and checks the host before and after.
func TestEscapeSuite(t *testing.T) {
	harness.Require(t)
	before := snapshotHost()
	s := startSuite(t)
	start := time.Now()
	var runs []run
	// WARD_ESCAPE_SHAPES=id,id runs those shapes only (no report then).
	only := strings.Split(os.Getenv("WARD_ESCAPE_SHAPES"), ",")
	for _, sh := range shapes() {
		if only[0] != "" && !slices.Contains(only, sh.ID) {
			continue
		}
		for _, rt := range runtimes() {
			r := s.runShape(t, sh, rt)
			runs = append(runs, r)
			t.Logf("%s on %s: %s", sh.ID, rt, summary(r))
		}
	}
	t.Logf("matrix: %d runs in %s", len(runs), time.Since(start).Round(time.Second))
	s.checkMatrix(t, runs)

	benignStart := time.Now()
	benign := s.runBenign(t)
	t.Logf("benign corpus: %d checks in %s", len(benign), time.Since(benignStart).Round(time.Second))

	if d := before.diff(snapshotHost()); len(d) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(d, "\n"))
	}
	if path := os.Getenv("WARD_ESCAPE_REPORT"); path != "" {
		if only[0] != "" {
			t.Errorf("not writing %s: WARD_ESCAPE_SHAPES ran part of the matrix", path)
			return
		}
		if t.Failed() {
			t.Errorf("not writing %s: the suite failed", path)
			return
		}
		doc := renderReport(runs, benign, versions(t), time.Now().UTC())
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}

func summary(r run) string {
	if !r.admitted() {
		return "refused: " + firstLine(r.Err)
	}
	n := map[probes.Result]int{}
	for _, o := range r.Outcomes {
		n[o.Result]++
	}
	return fmt.Sprintf("%d blocked, %d reachable, %d escaped", n[probes.Blocked], n[probes.Reachable], n[probes.Escaped])
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// checkMatrix is the gate: nothing escapes under ward from a shape ward
// admitted; every ward refusal is ward's own, named in its decision log;
// plain runc shows each shape's own probe open (so the pods have the
// shapes and the probes can see an escape: a clean ward column means
// something); and a socket probe's ESCAPED is matched by a connection the
// host's listener counted.
func (s *suite) checkMatrix(t *testing.T, runs []run) {
	t.Helper()
	byID := map[string]shape{}
	for _, sh := range shapes() {
		byID[sh.ID] = sh
	}
	sockets := map[string][]string{"runtime-socket": {s.fix.DockerSock, s.fix.RenamedSock}, "abstract-shim-socket": {"@" + s.abstract}}
	for _, r := range runs {
		for probe, addrs := range sockets {
			n := 0
			for _, a := range addrs {
				n += r.Connections[a]
			}
			if r.Outcomes[probe].Result == probes.Escaped && n == 0 {
				t.Errorf("%s on %s: %s says ESCAPED, but %v accepted no connection", r.Shape, r.Runtime, probe, addrs)
			}
		}
		switch r.Runtime {
		case "runc":
			if !r.admitted() {
				t.Errorf("%s on runc did not run: %s", r.Shape, r.Err)
				continue
			}
			for probe, want := range byID[r.Shape].OnRunc {
				if got := r.Outcomes[probe]; got.Result != want {
					t.Errorf("%s on runc: %s is %s (%s), want %s: the shape or the probe is void", r.Shape, probe, got.Result, got.Detail, want)
				}
			}
		default:
			if r.Decision == nil {
				t.Errorf("%s on %s: no decision in ward's log", r.Shape, r.Runtime)
				continue
			}
			if !r.admitted() {
				if r.Decision.Action != policy.Reject || !strings.Contains(r.Err, "ward rejected") {
					t.Errorf("%s on %s failed without a ward rejection (decision %s): %s", r.Shape, r.Runtime, r.Decision.Action, r.Err)
				}
				continue
			}
			for _, p := range probes.All() {
				if o := r.Outcomes[p.ID]; o.Result == probes.Escaped {
					t.Errorf("ESCAPED under %s, shape %s (admitted: %s %s): %s: %s", r.Runtime, r.Shape, r.Decision.Action, r.Decision.Backend, p.ID, o.Detail)
				}
			}
		}
	}
}

// versions names the components of the run.
func versions(t *testing.T) map[string]string {
	v := map[string]string{}
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "unknown (" + err.Error() + ")"
		}
		return strings.TrimSpace(firstLine(string(out)))
	}
	v["runc"] = first("runc", "--version")
	v["runsc"] = first("runsc", "--version")
	if strings.Contains(v["runsc"], "VERSION_MISSING") {
		// A `go install` build carries no version; install-deps.sh
		// leaves a stamp naming the pinned one beside the binary.
		if p, err := exec.LookPath("runsc"); err == nil {
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".stamp-runsc-*")); len(m) == 1 {
				v["runsc"] = "runsc " + strings.TrimPrefix(filepath.Base(m[0]), ".stamp-runsc-") + " (install-deps stamp)"
			}
		}
	}
	v["containerd"] = first("containerd", "--version")
	v["kernel"] = first("uname", "-r")
	v["ward"] = first("git", "-C", harness.RepoRoot(t), "describe", "--always", "--dirty")
	return v
}
