package shim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/policy"
)

// recorder stands in for runc's task service: these tests are about what
// ward hands it. Calls it does not implement panic (nil embedded service).
type recorder struct {
	taskAPI.TTRPCTaskService
	creates map[string]*taskAPI.CreateTaskRequest
	execs   []*taskAPI.ExecProcessRequest
	killErr error
}

func (r *recorder) Create(_ context.Context, req *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	r.creates[req.ID] = req
	return &taskAPI.CreateTaskResponse{Pid: 42}, nil
}

func (r *recorder) Exec(_ context.Context, req *taskAPI.ExecProcessRequest) (*types.Empty, error) {
	r.execs = append(r.execs, req)
	return &types.Empty{}, nil
}

func (r *recorder) Delete(_ context.Context, req *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	return &taskAPI.DeleteResponse{}, nil
}

func (r *recorder) Kill(context.Context, *taskAPI.KillRequest) (*types.Empty, error) {
	return nil, r.killErr
}

type fixture struct {
	svc   *Service
	inner *recorder
	state string
	dir   string
	ctx   context.Context
	// corpus is testdata/corpus, absolute: tests change directory.
	corpus string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "shim.yaml")
	// Any existing binaries do as backends: nothing is run.
	// The default policy minus its user namespace: these tests look at
	// decisions and routing; the userns step has its own tests.
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, policy.DefaultWithoutUserns(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("stateDir: "+state+"\npolicy: "+pol+"\nbackends:\n  runc: {binary: /bin/sh}\n  gvisor: {binary: /bin/sh}\n  kata: {binary: /nonexistent/containerd-shim-kata-v2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(nodeconfig.EnvConfig, cfg)
	inner := &recorder{creates: map[string]*taskAPI.CreateTaskRequest{}}
	svc := NewService(inner, nil)
	t.Cleanup(func() { svc.Close() })
	corpus, err := filepath.Abs(filepath.Join("..", "..", "testdata", "corpus"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, inner: inner, state: state, dir: dir, corpus: corpus, ctx: namespaces.WithNamespace(context.Background(), "k8s.io")}
}

// bundleFrom writes a corpus spec as a bundle; edit may change it first.
func (f *fixture) bundleFrom(t *testing.T, corpus, file string, edit func(*specs.Spec)) (string, *specs.Spec) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.corpus, corpus, file))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&s)
	}
	dir := filepath.Join(f.dir, corpus+"-"+strings.TrimSuffix(file, ".json"))
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(&s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, &s
}

func (f *fixture) create(t *testing.T, corpus, file string, edit func(*specs.Spec)) (string, error) {
	t.Helper()
	dir, s := f.bundleFrom(t, corpus, file, edit)
	id := s.Annotations[bundle.AnnotationSandboxID]
	if s.Annotations[bundle.AnnotationContainerType] == "container" {
		id = "ctr-" + id
	}
	_, err := f.svc.Create(f.ctx, &taskAPI.CreateTaskRequest{ID: id, Bundle: dir})
	return id, err
}

func runcOpts(t *testing.T, req *taskAPI.CreateTaskRequest) *runcoptions.Options {
	t.Helper()
	v, err := typeurl.UnmarshalAny(req.Options)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*runcoptions.Options)
	if !ok {
		t.Fatalf("runc got options of type %T", v)
	}
	return o
}

func readSpec(t *testing.T, dir string) *specs.Spec {
	t.Helper()
	b, err := bundle.Load(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b.Spec
}

// An app container asking for CAP_SYS_ADMIN in a pod whose sandbox was
// hardened on runc goes to gVisor in a sandbox of its own.
func TestCarryPodDecisionTighten(t *testing.T) {
	f := newFixture(t)
	sb, err := f.create(t, "cri-cap-sys-admin", "sandbox.json", nil)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	if o := runcOpts(t, f.inner.creates[sb]); o.BinaryName != "" {
		t.Errorf("hardened sandbox runs on %q, want runc's default", o.BinaryName)
	}
	if _, err := os.Stat(filepath.Join(f.state, "pods", sb+".json")); err != nil {
		t.Errorf("pod state: %v", err)
	}
	id, err := f.create(t, "cri-cap-sys-admin", "container.json", nil)
	if err != nil {
		t.Fatalf("container: %v", err)
	}
	req := f.inner.creates[id]
	o := runcOpts(t, req)
	if !strings.HasPrefix(o.BinaryName, filepath.Join(f.state, "bin", "runsc-")) || o.Root != filepath.Join(f.state, "runsc") {
		t.Errorf("gVisor container: BinaryName %q Root %q", o.BinaryName, o.Root)
	}
	s := readSpec(t, req.Bundle)
	if s.Annotations[bundle.AnnotationContainerType] != "sandbox" || s.Annotations[bundle.AnnotationSandboxID] != id {
		t.Errorf("container not made a sandbox of its own: %v", s.Annotations)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" && ns.Type != specs.NetworkNamespace {
			t.Errorf("namespace %s still joins %s", ns.Type, ns.Path)
		}
	}
	if _, err := os.Stat(filepath.Join(req.Bundle, "config.json.orig")); err != nil {
		t.Errorf("original spec not kept: %v", err)
	}
	// runsc must leave the pod's IP on the pod's interface.
	if flags := wrapperFlags(t, o); !slices.Contains(flags, "--network=host") {
		t.Errorf("own gVisor sandbox in a runc pod runs with %q, want --network=host", flags)
	}
	if _, err := f.svc.Delete(f.ctx, &taskAPI.DeleteRequest{ID: sb}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.state, "pods", sb+".json")); !os.IsNotExist(err) {
		t.Errorf("pod state left after the sandbox's delete: %v", err)
	}
}

// A pod decided for gVisor at its sandbox keeps its app containers in the
// same sandbox: they go to runsc unchanged, as subcontainers.
func TestCarryPodDecisionWholePod(t *testing.T) {
	f := newFixture(t)
	untrusted := func(s *specs.Spec) { s.Annotations["ward.dev/untrusted"] = "true" }
	sb, err := f.create(t, "cri-ordinary", "sandbox.json", untrusted)
	if err != nil {
		t.Fatal(err)
	}
	if o := runcOpts(t, f.inner.creates[sb]); !strings.Contains(o.BinaryName, "runsc-") {
		t.Errorf("untrusted sandbox runs on %q", o.BinaryName)
	}
	id, err := f.create(t, "cri-ordinary", "container.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req := f.inner.creates[id]
	if o := runcOpts(t, req); !strings.Contains(o.BinaryName, "runsc-") {
		t.Errorf("app container of a gVisor pod runs on %q", o.BinaryName)
	}
	if s := readSpec(t, req.Bundle); s.Annotations[bundle.AnnotationContainerType] != "container" {
		t.Errorf("app container of a gVisor pod was isolated: %v", s.Annotations)
	}
	// The pod's namespace is gVisor's own here: its stack stays gVisor's.
	for _, id := range []string{sb, id} {
		if flags := wrapperFlags(t, runcOpts(t, f.inner.creates[id])); slices.ContainsFunc(flags, isNetworkFlag) {
			t.Errorf("%s of a whole gVisor pod runs with %q", id, flags)
		}
	}
}

// wrapperFlags returns the runsc flags written into the runsc wrapper that
// o names as runc's binary.
func wrapperFlags(t *testing.T, o *runcoptions.Options) []string {
	t.Helper()
	data, err := os.ReadFile(o.BinaryName)
	if err != nil {
		t.Fatalf("runsc wrapper: %v", err)
	}
	_, rest, _ := strings.Cut(string(data), argWrapRunsc+" ")
	fields := strings.SplitN(rest, "' '", 2)
	if len(fields) != 2 {
		t.Fatalf("runsc wrapper %s: %q", o.BinaryName, data)
	}
	fj, _, _ := strings.Cut(fields[1], "'")
	var flags []string
	if err := json.Unmarshal([]byte(fj), &flags); err != nil {
		t.Fatalf("runsc wrapper's flags %q: %v", fj, err)
	}
	return flags
}

func isNetworkFlag(f string) bool { return strings.HasPrefix(f, "--network") }

// TestOwnSandboxNetworkIsWards: only admission's routing picks runsc's
// network mode, never what a workload writes. A NET_ADMIN init container
// beside a runc app (the service-mesh pattern) gets --network=host, and the
// app nothing of it; annotations asking runsc or ward for host networking
// change nothing; a host-network pod's container, whose namespace is the
// node's, is refused (rule sandbox-host-network): a sandbox there would
// take the node's addresses or be given its stack.
func TestOwnSandboxNetworkIsWards(t *testing.T) {
	f := newFixture(t)
	const corpus = "cri-mixed-init-gvisor"
	asks := func(s *specs.Spec) {
		s.Annotations["dev.gvisor.flag.network"] = "host"
		s.Annotations["ward.dev/network"] = "host"
	}
	sb, err := f.create(t, corpus, "sandbox.json", asks)
	if err != nil {
		t.Fatal(err)
	}
	init, err := f.create(t, corpus, "container-mesh-init.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := runcOpts(t, f.inner.creates[init])
	if flags := wrapperFlags(t, o); !slices.Contains(flags, "--network=host") {
		t.Errorf("mesh-init runs with %q, want --network=host", flags)
	}
	// The decision says so.
	if log, _ := os.ReadFile(filepath.Join(f.state, "decisions.jsonl")); !strings.Contains(string(log), "runsc --network=host") {
		t.Errorf("the decision log does not say the init container shares the pod's network stack:\n%s", log)
	}
	dir, _ := f.bundleFrom(t, corpus, "container.json", asks)
	app := "app-" + sb
	if _, err := f.svc.Create(f.ctx, &taskAPI.CreateTaskRequest{ID: app, Bundle: dir}); err != nil {
		t.Fatal(err)
	}
	if o := runcOpts(t, f.inner.creates[app]); o.BinaryName != "" {
		t.Errorf("the app beside it runs on %q, want runc", o.BinaryName)
	}
	// A workload's annotations, on a pod decided for gVisor as a whole.
	f = newFixture(t)
	untrusted := func(s *specs.Spec) { asks(s); s.Annotations["ward.dev/untrusted"] = "true" }
	sb, err = f.create(t, "cri-ordinary", "sandbox.json", untrusted)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := f.create(t, "cri-ordinary", "container.json", asks)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sb, ctr} {
		if flags := wrapperFlags(t, runcOpts(t, f.inner.creates[id])); slices.ContainsFunc(flags, isNetworkFlag) {
			t.Errorf("%s: annotations asking for host networking gave %q", id, flags)
		}
	}
	// A host-network pod: a gVisor sandbox there would take the node's
	// addresses or get the node's stack, so the container is refused,
	// naming what to change.
	f = newFixture(t)
	if _, err := f.create(t, "cri-hostnetwork", "sandbox.json", nil); err != nil {
		t.Fatal(err)
	}
	netAdmin := func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_NET_ADMIN")
		c.Effective = append(c.Effective, "CAP_NET_ADMIN")
		c.Permitted = append(c.Permitted, "CAP_NET_ADMIN")
	}
	before := len(f.inner.creates)
	_, err = f.create(t, "cri-hostnetwork", "container.json", netAdmin)
	if err == nil || !errdefs.IsPermissionDenied(errgrpc.ToNative(err)) {
		t.Fatalf("NET_ADMIN container of a host-network pod: %v, want refused", err)
	}
	for _, want := range []string{policy.RuleSandboxHostNetwork, "host-network", "cap-net-admin", "without host networking"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not say %q: %v", want, err)
		}
	}
	if len(f.inner.creates) != before {
		t.Error("the refused container reached runc's task service")
	}
}

func TestRejectionMessage(t *testing.T) {
	f := newFixture(t)
	_, err := f.create(t, "cri-privileged", "sandbox.json", nil)
	if err == nil {
		_, err = f.create(t, "cri-privileged", "container.json", nil)
	}
	if err == nil {
		t.Fatal("privileged pod admitted")
	}
	if !errdefs.IsPermissionDenied(errgrpc.ToNative(err)) {
		t.Errorf("not permission denied: %v", err)
	}
	for _, want := range []string{"ward rejected", "privileged", "reject-host-takeover", "hands over the host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("rejection lacks %q: %v", want, err)
		}
	}
}

func TestContainerWithoutPodFailsClosed(t *testing.T) {
	f := newFixture(t)
	_, err := f.create(t, "cri-ordinary", "container.json", nil)
	if err == nil || !strings.Contains(err.Error(), "no decision for its pod sandbox") {
		t.Fatalf("err = %v", err)
	}
	if len(f.inner.creates) != 0 {
		t.Error("runc was asked to create it anyway")
	}
}

func TestMissingBackendFailsClosed(t *testing.T) {
	f := newFixture(t)
	cfg := filepath.Join(f.dir, "shim.yaml")
	os.WriteFile(cfg, []byte("stateDir: "+f.state+"\npolicy: "+filepath.Join(f.dir, "policy.yaml")+"\nbackends:\n  runsc: /nonexistent/runsc\n"), 0o644)
	_, err := f.create(t, "cri-ordinary", "sandbox.json", func(s *specs.Spec) { s.Annotations["ward.dev/untrusted"] = "true" })
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/runsc") || !strings.Contains(err.Error(), "sandbox-untrusted") {
		t.Fatalf("err = %v, want one naming the binary and the rule", err)
	}
}

func TestExecHardened(t *testing.T) {
	f := newFixture(t)
	if _, err := f.create(t, "cri-ordinary", "sandbox.json", nil); err != nil {
		t.Fatal(err)
	}
	id, err := f.create(t, "cri-ordinary", "container.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	// containerd builds the exec process from its own copy of the spec,
	// not from ward's rewritten config.json.
	_, orig := f.bundleFrom(t, "cri-ordinary", "container.json", nil)
	p := *orig.Process
	p.Args = []string{"sh"}
	data, _ := json.Marshal(&p)
	_, err = f.svc.Exec(f.ctx, &taskAPI.ExecProcessRequest{ID: id, ExecID: "e1", Spec: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: data}})
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Process
	if err := json.Unmarshal(f.inner.execs[0].Spec.Value, &got); err != nil {
		t.Fatal(err)
	}
	if !got.NoNewPrivileges || got.Capabilities == nil || len(got.Capabilities.Effective) >= len(p.Capabilities.Effective) {
		t.Errorf("exec process not hardened: nnp %v caps %v", got.NoNewPrivileges, got.Capabilities)
	}
	// An exec in a container ward never saw is refused.
	if _, err := f.svc.Exec(f.ctx, &taskAPI.ExecProcessRequest{ID: "unknown", ExecID: "e2", Spec: &anypb.Any{Value: data}}); err == nil {
		t.Error("exec in an unknown container allowed")
	}
}

func TestKillSandboxNotRunning(t *testing.T) {
	f := newFixture(t)
	f.inner.killErr = errgrpc.ToGRPC(errdefsUnknown("unknown error after kill: runsc did not terminate successfully: exit status 128: sandbox is not running"))
	_, err := f.svc.Kill(f.ctx, &taskAPI.KillRequest{ID: "x"})
	if !errdefs.IsNotFound(errgrpc.ToNative(err)) {
		t.Errorf("err = %v, want not found", err)
	}
}

type errdefsUnknown string

func (e errdefsUnknown) Error() string { return string(e) }

// TestBackendIsOneEntry: a backend the node configuration adds (one entry,
// no code) gets the container through runc's shim code: its binary and a
// state root of its own in the runc options.
func TestBackendIsOneEntry(t *testing.T) {
	f := newFixture(t)
	pp := filepath.Join(f.dir, "policy.yaml")
	pol := strings.Replace(string(policy.DefaultWithoutUserns()), "  - name: sandbox-untrusted", "  - name: sandbox-untrusted-vm", 1)
	i := strings.Index(pol, "sandbox-untrusted-vm")
	pol = pol[:i] + strings.Replace(pol[i:], "backend: gvisor", "backend: fakevm", 1)
	if err := os.WriteFile(pp, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "stateDir: " + f.state + "\npolicy: " + pp + "\nbackends:\n  fakevm: {kind: oci-runtime, binary: /bin/true, sandbox: true}\n"
	if err := os.WriteFile(filepath.Join(f.dir, "shim.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := f.create(t, "cri-untrusted", "sandbox.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := runcOpts(t, f.inner.creates[id])
	if o.BinaryName != "/bin/true" || o.Root != filepath.Join(f.state, "fakevm") {
		t.Errorf("runc options %+v", o)
	}
}

// TestPolicyReload: a changed policy decides the next container; one that
// does not load leaves the last good one in force.
func TestPolicyReload(t *testing.T) {
	f := newFixture(t)
	pp := filepath.Join(f.dir, "policy.yaml")
	id, err := f.create(t, "cri-untrusted", "sandbox.json", nil)
	if err != nil || runcOpts(t, f.inner.creates[id]).Root != filepath.Join(f.state, "runsc") {
		t.Fatalf("before: %v", err)
	}
	// The new policy trusts the untrusted namespace: the pod is hardened.
	pol := strings.Replace(string(policy.DefaultWithoutUserns()), "annotation: ward.dev/untrusted", "annotation: ward.dev/never", 1)
	pol = strings.Replace(pol, "namespaces: [\"untrusted-*\"]", "namespaces: []", 1)
	if err := os.WriteFile(pp, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	delete(f.inner.creates, id)
	if _, err := f.svc.Delete(f.ctx, &taskAPI.DeleteRequest{ID: id}); err != nil {
		t.Fatal(err)
	}
	id, err = f.create(t, "cri-untrusted", "sandbox.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := runcOpts(t, f.inner.creates[id]); o.Root == filepath.Join(f.state, "runsc") {
		t.Fatalf("the changed policy was not picked up: %+v", o)
	}
	// A broken policy: the last good one stays.
	if err := os.WriteFile(pp, []byte("mode: bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.svc.Delete(f.ctx, &taskAPI.DeleteRequest{ID: id})
	delete(f.inner.creates, id)
	if id, err = f.create(t, "cri-untrusted", "sandbox.json", nil); err != nil {
		t.Fatalf("a broken policy stopped the shim: %v", err)
	}
	if o := runcOpts(t, f.inner.creates[id]); o.Root == filepath.Join(f.state, "runsc") {
		t.Errorf("the broken policy replaced the last good one: %+v", o)
	}
}
