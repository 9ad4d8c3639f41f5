// Package shim_test runs containerd-shim-ward-v2 as a CRI runtime handler
// of a private containerd, with real runc and runsc, and checks from inside
// the containers what ward did.
package shim_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ward-runtime/ward/integration/harness"
)

// ward starts a containerd with two ward handlers next to plain runc:
// "ward" (runtime_type io.containerd.runc.v2, configured through
// $WARD_CONFIG in containerd's environment) and "ward-audit" (another
// runtime_type, so containerd sends runtimeoptions with a TOML body naming
// the audit configuration).
type ward struct {
	*harness.Containerd
	StateDir string
	AuditDir string
}

func startWard(t *testing.T, extra ...extraHandler) *ward {
	harness.Require(t)
	shimBin := harness.WardBin(t, "containerd-shim-ward-v2")
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		t.Fatalf("runsc not on PATH (integration/install-deps.sh runsc): %v", err)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.NewDir(t)
	w := &ward{StateDir: filepath.Join(dir, "ward"), AuditDir: filepath.Join(dir, "ward-audit")}
	enforce := filepath.Join(dir, "ward-shim.yaml")
	audit := filepath.Join(dir, "ward-audit-shim.yaml")
	auditPolicy := filepath.Join(dir, "audit-policy.yaml")
	pool := harness.UsernsConfig(t, dir)
	backends := "backends:\n  runc: {binary: " + runc + "}\n  gvisor: {binary: " + runsc + "}\n"
	writeFile(t, enforce, "stateDir: "+w.StateDir+"\n"+backends+pool)
	writeFile(t, audit, "stateDir: "+w.AuditDir+"\npolicy: "+auditPolicy+"\n"+backends+pool)
	harness.WriteAuditPolicy(t, auditPolicy)
	var more []harness.Runtime
	for _, h := range extra {
		cfg := filepath.Join(dir, h.Name+"-shim.yaml")
		body := "stateDir: " + filepath.Join(dir, h.Name) + "\n" + backends + pool + h.Config
		if h.Audit {
			body += "policy: " + auditPolicy + "\n"
		}
		writeFile(t, cfg, body)
		bin := h.Shim
		if bin == "" {
			bin = shimBin
		}
		more = append(more, harness.Runtime{Name: h.Name, Type: "io.containerd.ward.v2", Path: bin,
			Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-"+h.Name), "WardConfig": cfg},
			PodAnnotations: []string{"ward.dev/*"}})
	}
	w.Containerd = harness.StartContainerd(t, harness.Config{
		Dir: dir,
		Env: []string{"WARD_CONFIG=" + enforce},
		Runtimes: append([]harness.Runtime{
			{
				Name: "ward", Path: shimBin,
				Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward"), "SystemdCgroup": false},
				PodAnnotations: []string{"ward.dev/*"},
			},
			{
				Name: "ward-audit", Type: "io.containerd.ward.v2", Path: shimBin,
				Options:        map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward-audit"), "WardConfig": audit},
				PodAnnotations: []string{"ward.dev/*"},
			},
		}, more...),
	})
	return w
}

// extraHandler is one more ward handler, with a state directory of its
// own (named after it): another shim binary (a benchmark's baseline) or
// another configuration.
type extraHandler struct {
	Name string
	// Shim is the shim binary; "" is this build's.
	Shim string
	// Audit runs it with the audit policy; Config is appended to its
	// ward.yaml.
	Audit  bool
	Config string
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// status returns the fields of a /proc/<pid>/status file inside a container.
func status(t *testing.T, c *harness.Containerd, id, file string) map[string]string {
	t.Helper()
	out, err := c.Exec(id, "cat", file)
	if err != nil {
		t.Fatalf("reading /proc/self/status in %s: %v", id, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// capNetRaw is CAP_NET_RAW's bit in CapEff: containerd's default set has
// it, ward's hardened set does not.
const capNetRaw = 1 << 13

func capEff(t *testing.T, st map[string]string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(st["CapEff"], 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", st["CapEff"], err)
	}
	return v
}

// TestHardenedPod: an ordinary pod runs hardened, both its main process
// and a process started later with crictl exec (containerd builds the exec
// process from its own, unhardened copy of the spec).
func TestHardenedPod(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "ordinary", Handler: "ward"})
	if err != nil {
		t.Fatalf("ordinary pod: %v\n%s", err, w.LogTail(40))
	}
	for _, file := range []string{"/proc/1/status", "/proc/self/status"} {
		st := status(t, w.Containerd, p.ContainerID, file)
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
			t.Errorf("%s: Seccomp=%q NoNewPrivs=%q, want 2 and 1", file, st["Seccomp"], st["NoNewPrivs"])
		}
		if c := capEff(t, st); c&capNetRaw != 0 || c == 0 {
			t.Errorf("%s: CapEff %x, want the hardened set (no CAP_NET_RAW)", file, c)
		}
	}
	// The default policy's user namespace: container root is an
	// unprivileged host ID from the test's pool.
	if out, err := w.Exec(p.ContainerID, "cat", "/proc/self/uid_map"); err != nil || len(strings.Fields(out)) != 3 || strings.Fields(out)[1] == "0" {
		t.Errorf("uid_map %q (%v), want container root mapped to a non-zero host ID", out, err)
	}
	// The same pod on plain runc keeps containerd's defaults.
	r, err := w.RunPod(harness.Pod{Name: "ordinary-runc", Handler: "runc"})
	if err != nil {
		t.Fatalf("runc pod: %v", err)
	}
	st := status(t, w.Containerd, r.ContainerID, "/proc/1/status")
	if st["Seccomp"] != "0" || capEff(t, st)&capNetRaw == 0 {
		t.Errorf("runc handler: Seccomp=%q CapEff=%q; the comparison is void", st["Seccomp"], st["CapEff"])
	}

	// The bundle keeps the original spec beside the rewritten one.
	bundleDir := filepath.Join(w.State, "io.containerd.runtime.v2.task", "k8s.io", p.ContainerID)
	if _, err := os.Stat(filepath.Join(bundleDir, "config.json.orig")); err != nil {
		t.Errorf("original spec not kept: %v", err)
	}

	// One decision-log line per decision: sandbox, container, two execs.
	entries := decisions(t, w.StateDir)
	var sawSandbox, sawContainer, sawExec bool
	for _, e := range entries {
		switch {
		case e.Event == "create" && e.ContainerID == p.SandboxID:
			sawSandbox = e.Action == "harden" && e.Workload.Kind == "sandbox"
		case e.Event == "create" && e.ContainerID == p.ContainerID:
			sawContainer = e.Action == "harden" && e.Backend == "runc" && e.Workload.Pod == "ordinary" &&
				e.Workload.Namespace == "ward-it" && e.Workload.Container == "app" &&
				e.Workload.Image == harness.BusyboxImage && len(e.Findings) > 0 && len(e.Attack) > 0 && len(e.Changes) > 0
		case e.Event == "exec" && strings.HasPrefix(e.ContainerID, p.ContainerID+"/"):
			sawExec = len(e.Changes) > 0
		}
	}
	if !sawSandbox || !sawContainer || !sawExec {
		t.Errorf("decision log: sandbox %v, container %v, exec %v; entries:\n%+v", sawSandbox, sawContainer, sawExec, entries)
	}

	if err := w.RemovePod(p.SandboxID); err != nil {
		t.Fatal(err)
	}
	if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
		t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
	}
}

type entry struct {
	Event       string `json:"event"`
	ContainerID string `json:"containerID"`
	Error       string `json:"error"`
	ErrorKind   string `json:"errorKind"`
	// DurationSeconds is the shim's time to decide (ward metrics'
	// latency histogram).
	DurationSeconds float64 `json:"durationSeconds"`
	Action          string  `json:"action"`
	Backend         string  `json:"backend"`
	Audit           bool    `json:"audit"`
	Findings        []struct {
		ID string `json:"id"`
	} `json:"findings"`
	Attack   []string          `json:"attack"`
	Changes  []json.RawMessage `json:"changes"`
	Notes    []string          `json:"notes"`
	Workload struct {
		Kind      string `json:"kind"`
		Pod       string `json:"pod"`
		Namespace string `json:"namespace"`
		Container string `json:"container"`
		Image     string `json:"image"`
	} `json:"workload"`
}

func decisions(t *testing.T, stateDir string) []entry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "decisions.jsonl"))
	if err != nil {
		t.Fatalf("decision log: %v", err)
	}
	var out []entry
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("decision log line %q: %v", l, err)
		}
		if e.DurationSeconds <= 0 || (e.Error != "") != (e.ErrorKind != "") {
			t.Errorf("decision log line without its duration or error kind: %s", l)
		}
		out = append(out, e)
	}
	return out
}

func TestRejectedPod(t *testing.T) {
	w := startWard(t)
	// containerd's event stream carries ward's decisions too.
	conn, err := grpc.NewClient("unix://"+w.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	subCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := eventsapi.NewEventsClient(conn).Subscribe(subCtx, &eventsapi.SubscribeRequest{Filters: []string{`topic=="/ward/decision"`}})
	if err != nil {
		t.Fatal(err)
	}
	evs, subErrs := make(chan *eventsapi.Envelope), make(chan error, 1)
	go func() {
		for {
			env, err := sub.Recv()
			if err != nil {
				subErrs <- err
				return
			}
			evs <- env
		}
	}()
	time.Sleep(200 * time.Millisecond) // subscribed before the pod
	_, err = w.RunPod(harness.Pod{Name: "privileged", Handler: "ward", Privileged: true})
	if err == nil {
		t.Fatal("privileged pod started; ward should have rejected it")
	}
	msg := err.Error()
	for _, want := range []string{"ward rejected", "privileged", "reject-host-takeover"} {
		if !strings.Contains(msg, want) {
			t.Errorf("crictl error lacks %q: %s", want, msg)
		}
	}
	// The shim forwards its events asynchronously; the sandbox was
	// hardened, the app container rejected.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case env := <-evs:
			var st structpb.Struct
			if err := proto.Unmarshal(env.Event.GetValue(), &st); err != nil {
				t.Fatalf("decision event payload %s: %v", env.Event.GetTypeUrl(), err)
			}
			d := st.AsMap()
			if d["action"] != "reject" {
				continue
			}
			findings, _ := d["findings"].([]any)
			attack, _ := d["attack"].([]any)
			if d["rule"] != "reject-host-takeover" || d["pod"] != "privileged" || !slices.Contains(findings, any("privileged")) || !slices.Contains(attack, any("T1611")) {
				t.Errorf("rejection event: %v", d)
			}
			return
		case err := <-subErrs:
			t.Fatalf("containerd events: %v", err)
		case <-deadline:
			t.Fatal("no /ward/decision event for the rejected container")
		}
	}
}

func TestGVisorPod(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "sysadmin", Handler: "ward", AddCaps: []string{"SYS_ADMIN"}})
	if err != nil {
		t.Fatalf("CAP_SYS_ADMIN pod: %v\n%s", err, w.LogTail(40))
	}
	out, err := w.Exec(p.ContainerID, "dmesg")
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	if !strings.Contains(out, "gVisor") {
		t.Errorf("dmesg in the container does not show gVisor's kernel:\n%s", out)
	}
	if err := w.RemovePod(p.SandboxID); err != nil {
		t.Fatalf("removing pod: %v", err)
	}
	if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
		t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
	}
	// runsc's root is under the shim's state directory; nothing of it may
	// stay mounted (runsc --network=none mounts a null-netns there).
	if m := harness.MountsUnder(w.StateDir); len(m) > 0 {
		t.Errorf("mounts left under the shim's state directory: %v", m)
	}
}

// TestGVisorWholePod: a pod marked untrusted at the pod level is decided at
// its sandbox, so the pause container and the app container share one
// gVisor sandbox.
func TestGVisorWholePod(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "untrusted", Handler: "ward", Annotations: map[string]string{"ward.dev/untrusted": "true"},
		Command: []string{"sh", "-c", "echo hello-from-gvisor; exec sleep 3600"}})
	if err != nil {
		t.Fatalf("untrusted pod: %v\n%s", err, w.LogTail(40))
	}
	out, err := w.Exec(p.ContainerID, "dmesg")
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	if !strings.Contains(out, "gVisor") {
		t.Errorf("dmesg in the container does not show gVisor's kernel:\n%s", out)
	}
	// One sandbox: runsc lists both containers with the sandbox's pid.
	list, err := exec.Command("runsc", "--root", filepath.Join(w.StateDir, "runsc", "k8s.io"), "list", "-format", "json").Output()
	if err != nil {
		t.Fatalf("runsc list: %v", err)
	}
	var cs []struct {
		ID  string `json:"id"`
		Pid int    `json:"pid"`
	}
	if err := json.Unmarshal(list, &cs); err != nil {
		t.Fatalf("runsc list: %v: %s", err, list)
	}
	pids := map[string]int{}
	for _, c := range cs {
		pids[c.ID] = c.Pid
	}
	if pids[p.SandboxID] == 0 || pids[p.SandboxID] != pids[p.ContainerID] {
		t.Errorf("pause and app container are not in one gVisor sandbox: %s", list)
	}
	// The app container's stdout reaches its log (runsc binds it at start).
	logs, stderr, err := w.Crictl("logs", p.ContainerID)
	if err != nil || !strings.Contains(logs+stderr, "hello-from-gvisor") {
		t.Errorf("crictl logs: %q %q %v", logs, stderr, err)
	}
	if err := w.RemovePod(p.SandboxID); err != nil {
		t.Fatalf("removing pod: %v", err)
	}
	if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
		t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
	}
}

// TestAuditHandler: the ward-audit handler (another runtime_type, so
// containerd sends runtimeoptions.v1.Options with a TOML body) only logs:
// a privileged pod runs, and the log says ward would have rejected it.
func TestAuditHandler(t *testing.T) {
	w := startWard(t)
	p, err := w.RunPod(harness.Pod{Name: "privileged-audit", Handler: "ward-audit", Privileged: true})
	if err != nil {
		t.Fatalf("privileged pod under audit: %v\n%s", err, w.LogTail(40))
	}
	st := status(t, w.Containerd, p.ContainerID, "/proc/1/status")
	if st["Seccomp"] != "0" {
		t.Errorf("audit mode changed the container: Seccomp=%q", st["Seccomp"])
	}
	var found bool
	for _, e := range decisions(t, w.AuditDir) {
		if e.Event == "create" && e.ContainerID == p.ContainerID {
			found = e.Audit && e.Action == "reject"
		}
	}
	if !found {
		t.Error("audit decision log has no 'would reject' entry for the privileged container")
	}
}

// TestContainerdRestart: pods keep running while containerd restarts, and
// stop cleanly afterwards (the shim, not containerd, holds ward's state).
func TestContainerdRestart(t *testing.T) {
	w := startWard(t)
	hard, err := w.RunPod(harness.Pod{Name: "restart-hardened", Handler: "ward"})
	if err != nil {
		t.Fatalf("hardened pod: %v", err)
	}
	gv, err := w.RunPod(harness.Pod{Name: "restart-gvisor", Handler: "ward", Annotations: map[string]string{"ward.dev/untrusted": "true"}})
	if err != nil {
		t.Fatalf("gVisor pod: %v", err)
	}
	w.Restart()
	for _, p := range []harness.RunningPod{hard, gv} {
		state, _, err := w.Crictl("inspect", "-o", "go-template", "--template", "{{.status.state}}", p.ContainerID)
		if err != nil || state != "CONTAINER_RUNNING" {
			t.Errorf("after restart, %s is %q (%v)", p.ContainerID, state, err)
		}
		// Exec still goes through ward: the shim kept the pod's decision.
		if out, err := w.Exec(p.ContainerID, "cat", "/proc/self/status"); err != nil || !strings.Contains(out, "NoNewPrivs") {
			t.Errorf("exec after restart: %v", err)
		}
	}
	for _, p := range []harness.RunningPod{hard, gv} {
		if err := w.RemovePod(p.SandboxID); err != nil {
			t.Fatalf("removing pod after restart: %v", err)
		}
		if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
			t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
		}
	}
}
