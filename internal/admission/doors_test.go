package admission_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/cli"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/shim"
	"github.com/ward-runtime/ward/internal/wardruntime"
	"github.com/ward-runtime/ward/policy"
)

// fakeTasks stands in for runc's task service behind the shim: it creates
// and starts nothing, and answers with a pid.
type fakeTasks struct{ taskAPI.TTRPCTaskService }

func (fakeTasks) Create(context.Context, *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	// Above the kernel's PID_MAX_LIMIT (4194304): no process has it, so
	// the sandbox's namespaces, read from /proc/<pid>, are never a real
	// process's (a real one's would be the host's).
	return &taskAPI.CreateTaskResponse{Pid: 1 << 23}, nil
}

func (fakeTasks) Exec(context.Context, *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	return &ptypes.Empty{}, nil
}

// door runs one container through one front door and says what came out:
// the error message the user sees ("" when it may run).
type door interface {
	create(t *testing.T, id, bundleDir string) string
	exec(t *testing.T, id string, p *specs.Process) string
	log() string
}

type shimDoor struct {
	svc     *shim.Service
	logPath string
}

func newShimDoor(t testing.TB, dir, pol string) *shimDoor {
	state := filepath.Join(dir, "shim-state")
	cfg := filepath.Join(dir, "shim.yaml")
	writeFile(t, cfg, "stateDir: "+state+"\npolicy: "+pol+"\nbackends:\n  runc: {binary: /bin/true}\n  gvisor: {binary: /bin/true}\n")
	t.Setenv("WARD_CONFIG", cfg)
	svc := shim.NewService(fakeTasks{}, nil)
	t.Cleanup(func() { svc.Close() })
	return &shimDoor{svc: svc, logPath: filepath.Join(state, "decisions.jsonl")}
}

func (d *shimDoor) create(t *testing.T, id, bundleDir string) string {
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	_, err := d.svc.Create(ctx, &taskAPI.CreateTaskRequest{ID: id, Bundle: bundleDir})
	return grpcMessage(err)
}

func (d *shimDoor) exec(t *testing.T, id string, p *specs.Process) string {
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	data, _ := json.Marshal(p)
	_, err := d.svc.Exec(ctx, &taskAPI.ExecProcessRequest{ID: id, ExecID: "e1",
		Spec: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: data}})
	return grpcMessage(err)
}

// grpcMessage is the message of a gRPC error as a user reads it.
func grpcMessage(err error) string {
	if err == nil {
		return ""
	}
	// The gRPC status wraps the message: "rpc error: code = X desc = MSG: class".
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "desc = "); ok {
		msg = rest
	}
	for _, class := range []string{": permission denied", ": failed precondition", ": invalid argument"} {
		msg = strings.TrimSuffix(msg, class)
	}
	return msg
}

func (d *shimDoor) log() string { return d.logPath }

type runtimeDoor struct {
	env     *wardruntime.Env
	root    string
	logPath string
	stderr  *bytes.Buffer
}

func newRuntimeDoor(t *testing.T, dir, pol string) *runtimeDoor {
	state := filepath.Join(dir, "runtime-state")
	cfg := filepath.Join(dir, "runtime.yaml")
	writeFile(t, cfg, "stateDir: "+state+"\npolicy: "+pol+"\nbackends:\n  runc: {binary: /bin/true}\n  gvisor: {binary: /bin/true}\n")
	d := &runtimeDoor{root: filepath.Join(dir, "root"), logPath: filepath.Join(state, "decisions.jsonl"), stderr: &bytes.Buffer{}}
	d.env = &wardruntime.Env{
		Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: d.stderr,
		Getenv: func(k string) string {
			if k == "WARD_CONFIG" {
				return cfg
			}
			return ""
		},
		Exec: func(string, []string, []string) error { return nil },
	}
	return d
}

func (d *runtimeDoor) create(t *testing.T, id, bundleDir string) string {
	return d.main(t, "create", "--bundle", bundleDir, id)
}

func (d *runtimeDoor) exec(t *testing.T, id string, p *specs.Process) string {
	path := filepath.Join(t.TempDir(), "process.json")
	data, _ := json.Marshal(p)
	writeFile(t, path, string(data))
	return d.main(t, "exec", "--process", path, id)
}

// main runs ward-runtime and returns its error message, "" on success.
func (d *runtimeDoor) main(t *testing.T, args ...string) string {
	d.stderr.Reset()
	if wardruntime.Main(append([]string{"--root", d.root, "--log-format", "json"}, args...), d.env) == 0 {
		return ""
	}
	// runc's log line, as container managers read it.
	var line struct{ Msg string }
	if err := json.Unmarshal(d.stderr.Bytes(), &line); err != nil {
		t.Fatalf("ward-runtime's error line %q: %v", d.stderr.String(), err)
	}
	return line.Msg
}

func (d *runtimeDoor) log() string { return d.logPath }

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bundleOf writes a corpus spec as a bundle of its own under dir.
func bundleOf(t *testing.T, dir, file string) (string, string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), string(data))
	id := s.Annotations[bundle.AnnotationSandboxID]
	if s.Annotations[bundle.AnnotationContainerType] == "container" {
		id = "ctr-" + id
	}
	if id == "" {
		id = "plain-" + filepath.Base(filepath.Dir(file))
	}
	return dir, id
}

// entries reads a decision log, with what legitimately differs between
// doors (the door, the time, the bundle's directory) cleared.
func entries(t *testing.T, path string) []decisionlog.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []decisionlog.Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var e decisionlog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		e.Door, e.Time, e.Bundle, e.DurationSeconds, e.ID = "", time.Time{}, "", 0, ""
		// runc's command line has no exec IDs; the task API's is the
		// shim's transport.
		e.ContainerID = strings.TrimSuffix(e.ContainerID, "/e1")
		out = append(out, e)
	}
	return out
}

// TestSameDecisionThroughEveryDoor runs the corpus through the shim and
// ward-runtime: the same request gives the same decision, the same message
// and the same decision-log entry through both.
func TestSameDecisionThroughEveryDoor(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	// The user-namespace step maps root filesystems by the door's own
	// means (containerd's mount options, ward-runtime's idmapped mounts):
	// its changes are the door's and have their own tests.
	writeFile(t, pol, string(policy.DefaultWithoutUserns()))
	corpus, err := filepath.Glob(filepath.Join("..", "..", "testdata", "corpus", "*"))
	if err != nil || len(corpus) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	doors := map[string]door{"shim": newShimDoor(t, dir, pol), "runtime": newRuntimeDoor(t, dir, pol)}
	msgs := map[string][]string{}
	n := 0
	for _, c := range corpus {
		files := []string{"sandbox.json", "container.json"}
		if _, err := os.Stat(filepath.Join(c, "config.json")); err == nil {
			files = []string{"config.json"}
		}
		for _, f := range files {
			for name, d := range doors {
				b, id := bundleOf(t, filepath.Join(dir, name, filepath.Base(c), f), filepath.Join(c, f))
				msgs[name] = append(msgs[name], filepath.Base(c)+"/"+f+": "+d.create(t, id, b))
			}
			n++
		}
	}
	// Exec sessions in the ordinary pod's app container: an ordinary one,
	// and one whose cwd is a leaked host descriptor (CVE-2024-21626).
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "corpus", "cri-ordinary", "container.json"))
	if err != nil {
		t.Fatal(err)
	}
	var app specs.Spec
	if err := json.Unmarshal(data, &app); err != nil {
		t.Fatal(err)
	}
	ctr := "ctr-" + app.Annotations[bundle.AnnotationSandboxID]
	for _, cwd := range []string{"/", "/proc/self/fd/7"} {
		p := *app.Process
		p.Args, p.Cwd = []string{"sh"}, cwd
		for name, d := range doors {
			msgs[name] = append(msgs[name], "exec cwd "+cwd+": "+d.exec(t, ctr, &p))
		}
		n++
	}
	for i := range msgs["shim"] {
		if msgs["shim"][i] != msgs["runtime"][i] {
			t.Errorf("messages differ:\n  shim:    %s\n  runtime: %s", msgs["shim"][i], msgs["runtime"][i])
		}
	}
	se, re := entries(t, doors["shim"].log()), entries(t, doors["runtime"].log())
	if len(se) != n || len(re) != n {
		t.Fatalf("%d requests, %d shim entries, %d runtime entries", n, len(se), len(re))
	}
	for i := range se {
		a, _ := json.Marshal(se[i])
		b, _ := json.Marshal(re[i])
		if !bytes.Equal(a, b) {
			t.Errorf("entry %d differs:\n  shim:    %s\n  runtime: %s", i, a, b)
		}
	}
	if !strings.Contains(msgs["shim"][len(msgs["shim"])-1], "CVE-2024-21626") {
		t.Errorf("the leaked-descriptor exec was not refused: %s", msgs["shim"][len(msgs["shim"])-1])
	}
	// ward explain, on the same specs, decides as the doors did.
	explained := 0
	for i, e := range se {
		if e.Event != "create" || e.Error != "" {
			continue
		}
		c := filepath.Join("..", "..", "testdata", "corpus", e.Workload.Pod)
		if e.Workload.Pod == "" {
			continue
		}
		args := []string{"explain", "--json", "--policy", pol}
		switch e.Workload.Kind {
		case bundle.PodContainer:
			args = append(args, filepath.Join(c, "container.json"), "--pod", filepath.Join(c, "sandbox.json"))
		case bundle.Sandbox:
			args = append(args, filepath.Join(c, "sandbox.json"))
		default:
			continue
		}
		var out, errb bytes.Buffer
		cli.Main(args, strings.NewReader(""), &out, &errb)
		var doc cli.Document
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("ward %v: %v\n%s", args, err, errb.String())
		}
		r := doc.Report
		if r.Action != e.Action || r.Backend != e.Backend || r.Rule != e.Rule || r.Reason != e.Reason ||
			strings.Join(r.Deciding, ",") != strings.Join(e.Deciding, ",") || len(r.Findings) != len(e.Findings) {
			t.Errorf("entry %d: ward explain says %s/%s %q %v (%d findings); the shim %s/%s %q %v (%d findings)",
				i, r.Action, r.Backend, r.Rule, r.Deciding, len(r.Findings), e.Action, e.Backend, e.Rule, e.Deciding, len(e.Findings))
		}
		explained++
	}
	if explained == 0 {
		t.Error("ward explain was compared with nothing")
	}
	t.Logf("%d requests through the shim and ward-runtime; ward explain compared on %d of them", n, explained)
	rejected := 0
	for _, m := range msgs["shim"] {
		if strings.Contains(m, "ward rejected") {
			rejected++
		}
	}
	if rejected == 0 {
		t.Error("the corpus rejected nothing: the comparison proves little")
	}
}

// TestSameRefusalWithoutAPolicy: a node whose policy does not load refuses
// a container with the same message through both doors.
func TestSameRefusalWithoutAPolicy(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	writeFile(t, pol, "mode: bogus\n")
	doors := map[string]door{"shim": newShimDoor(t, dir, pol), "runtime": newRuntimeDoor(t, dir, pol)}
	msgs := map[string]string{}
	for name, d := range doors {
		b, id := bundleOf(t, filepath.Join(dir, name), filepath.Join("..", "..", "testdata", "corpus", "ctr-run", "config.json"))
		msgs[name] = d.create(t, id, b)
	}
	if msgs["shim"] == "" || msgs["shim"] != msgs["runtime"] || !strings.Contains(msgs["shim"], "cannot judge") {
		t.Errorf("refusals differ or are empty:\n  shim:    %s\n  runtime: %s", msgs["shim"], msgs["runtime"])
	}
	// Each door's log says the policy did not load (ward metrics counts
	// these), once per load tried.
	for name, d := range doors {
		es := entries(t, d.log())
		if len(es) != 1 || es[0].Event != "load" || es[0].ErrorKind != "policy" || !strings.Contains(es[0].Error, "loading policy") {
			t.Errorf("%s's decision log: want one load entry of kind policy, got %+v", name, es)
		}
	}
}
