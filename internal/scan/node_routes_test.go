package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/shim"
	"github.com/ward-runtime/ward/policy"
)

// taskRecorder stands in for runc's task service behind ward's shim: it
// runs nothing and keeps what ward handed it.
type taskRecorder struct {
	taskAPI.TTRPCTaskService
	creates map[string]*taskAPI.CreateTaskRequest
}

func (r *taskRecorder) Create(_ context.Context, req *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	r.creates[req.ID] = req
	// Above the kernel's PID_MAX_LIMIT (4194304): no process has it, so
	// the sandbox's namespaces, read from /proc/<pid>, are never a real
	// process's (a real one's would be the host's).
	return &taskAPI.CreateTaskResponse{Pid: 1 << 23}, nil
}

// route is what the node did with one container: refused it, or ran it on
// a backend, in its pod's sandbox or in one of its own.
type route struct {
	rejected bool
	backend  policy.Backend
	// ownSandbox: the container was made the root of a sandbox of its
	// own (it runs on another backend than its pod's sandbox).
	ownSandbox bool
	detail     string
}

func (r route) String() string {
	switch {
	case r.rejected:
		return "rejected"
	case r.ownSandbox:
		return string(r.backend) + " (own sandbox)"
	}
	return string(r.backend)
}

// expected is the route the scan's result implies: a rejected container is
// refused; a sandboxed one runs on its backend, in a sandbox of its own
// when its pod's sandbox runs elsewhere; everything else on runc.
func expected(res *Result, podBackend policy.Backend) route {
	switch {
	case res.Rejected():
		return route{rejected: true}
	case res.Action == policy.Sandbox && !res.Audit:
		return route{backend: res.Backend, ownSandbox: res.Backend != podBackend}
	}
	return route{backend: policy.Runc}
}

// nodePolicyFile writes the policy the routing test runs both the scan and
// the shim under: the default, told where the capture kept its per-pod
// files, without user namespaces (they need an ID pool and idmapped
// mounts, and decide no route).
func nodePolicyFile(t *testing.T, dir string, m captureMeta, rules []any) string {
	t.Helper()
	def, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{
		"extends": "default",
		"userns":  map[string]any{"enabled": false},
		"node":    map[string]any{"kubeletRoot": m.KubeletRoot, "runtimeDirs": m.runtimeDirs(def)},
	}
	if rules != nil {
		doc["rules"] = rules
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bundleOf writes a captured spec as a bundle under dir.
func bundleOf(t *testing.T, dir, spec string) (string, *specs.Spec) {
	t.Helper()
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, strings.TrimSuffix(filepath.Base(spec), ".json"))
	if err := os.MkdirAll(filepath.Join(b, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b, &s
}

// TestScanAgreesWithShimRoutes runs every captured CRI pod through ward's
// containerd shim (its task service, with runc's behind it replaced by a
// recorder): the sandbox, then each container in the order the kubelet
// creates them (init containers and sidecars, then the app). For each
// container, what the shim did (refused it, or handed runc's task service
// a runc or a runsc binary, with the spec made a sandbox of its own or
// not) is what the scan of the pod's manifest says, under the same
// policy file. Pods with mixed decisions are the point: in
// cri-mixed-init-gvisor the init container runs in gVisor in a sandbox of
// its own while the app runs on runc; in cri-mixed-sidecar-reject the
// sidecar is refused and the app would run.
//
// Under a policy that sends CAP_SYS_ADMIN to Kata, a containerd shim that
// takes whole pods at their sandbox, the shim refuses cri-cap-sys-admin's
// container (its pod's sandbox runs on runc), and the scan says so.
func TestScanAgreesWithShimRoutes(t *testing.T) {
	kata := []any{map[string]any{"name": "sandbox-kernel-surface", "action": "sandbox", "backend": "kata",
		"reason": "kernel attack surface, in Kata", "match": map[string]any{"findings": []any{policy.IDCapSysAdmin}}}}
	for _, tc := range []struct {
		name  string
		rules []any
	}{{"default", nil}, {"kata", kata}} {
		t.Run(tc.name, func(t *testing.T) { shimRoutes(t, tc.rules) })
	}
}

func shimRoutes(t *testing.T, rules []any) {
	dirs, err := filepath.Glob("../../testdata/corpus/cri-*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no CRI corpus: %v", err)
	}
	mixed, refused := 0, 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			m := readMeta(t, dir)
			pol := nodePolicyFile(t, work, m, rules)
			p, err := policy.Load(pol)
			if err != nil {
				t.Fatal(err)
			}
			// The node as captured: its kubelet root and containerd
			// directories, no AppArmor.
			n := manifest.DefaultNode(p)
			n.ContainerdRoot, n.ContainerdState, n.AppArmor = m.ContainerdRoot, m.ContainerdState, false
			s, err := New(p, n)
			if err != nil {
				t.Fatal(err)
			}
			rs := scanCase(t, s, name)

			state := filepath.Join(work, "state")
			cfg := filepath.Join(work, "ward.yaml")
			// Nothing is run: any existing binary does.
			if err := os.WriteFile(cfg, []byte("stateDir: "+state+"\npolicy: "+pol+"\nbackends:\n  runc: {binary: /bin/true}\n  gvisor: {binary: /bin/true}\n  kata: {binary: /bin/true}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv(nodeconfig.EnvConfig, cfg)
			rec := &taskRecorder{creates: map[string]*taskAPI.CreateTaskRequest{}}
			svc := shim.NewService(rec, nil)
			t.Cleanup(func() { svc.Close() })
			quiet := logrus.New()
			quiet.Out = io.Discard
			ctx := log.WithLogger(namespaces.WithNamespace(context.Background(), "k8s.io"), logrus.NewEntry(quiet))

			sbDir, sb := bundleOf(t, work, filepath.Join(dir, "sandbox.json"))
			sbID := sb.Annotations[bundle.AnnotationSandboxID]
			if _, err := svc.Create(ctx, &taskAPI.CreateTaskRequest{ID: sbID, Bundle: sbDir}); err != nil {
				// A sandbox ward refuses leaves every container refused.
				for _, res := range rs {
					if !res.Rejected() {
						t.Errorf("%s: the node refused the pod's sandbox (%v), the scan runs the container", res.Container, err)
					}
				}
				return
			}
			podBackend := routeOf(t, rec.creates[sbID], nil).backend
			backends := map[policy.Backend]bool{}
			for i, res := range rs {
				id := fmt.Sprintf("ctr-%d-%s", i, res.Container)
				b, _ := bundleOf(t, work, filepath.Join(dir, containerFile(res.Container)))
				_, err := svc.Create(ctx, &taskAPI.CreateTaskRequest{ID: id, Bundle: b})
				got := routeOf(t, rec.creates[id], err)
				want := expected(&res, podBackend)
				if got.String() != want.String() {
					t.Errorf("%s: the shim: %s (%s); the scan: %s (%s %s: %s)", res.Container, got, got.detail, want, res.Action, res.Backend, res.Reason)
				}
				backends[got.backend] = true
				if got.rejected {
					backends["rejected"] = true
				}
				if res.Refused != "" {
					refused++
				}
			}
			if len(backends) > 1 {
				mixed++
			}
		})
	}
	if mixed < 2 {
		t.Errorf("%d pods hold containers with different routes, want the two cri-mixed-* at least", mixed)
	}
	if rules != nil && refused == 0 {
		t.Error("no container refused for a shim backend in a pod on runc")
	}
}

// routeOf reads what the shim did with a container from its create error
// or the request it handed runc's task service.
func routeOf(t *testing.T, req *taskAPI.CreateTaskRequest, err error) route {
	t.Helper()
	if err != nil {
		// A rejection, or a container its pod's sandbox cannot take
		// (admission's route: a pod cannot move to another shim).
		native := errgrpc.ToNative(err)
		if !errdefs.IsPermissionDenied(native) && !(errdefs.IsFailedPrecondition(native) && strings.Contains(err.Error(), "cannot move to another shim")) {
			t.Fatalf("the shim failed instead of deciding: %v", err)
		}
		return route{rejected: true, detail: err.Error()}
	}
	if req == nil {
		t.Fatal("the shim created nothing and reported no error")
	}
	v, err := typeurl.UnmarshalAny(req.Options)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*runcoptions.Options)
	if !ok {
		t.Fatalf("options of type %T", v)
	}
	r := route{backend: policy.Runc, detail: "binary " + o.BinaryName + ", root " + o.Root}
	if strings.HasPrefix(filepath.Base(o.BinaryName), "runsc-") {
		r.backend = policy.GVisor
	}
	data, err := os.ReadFile(filepath.Join(req.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	r.ownSandbox = s.Annotations[bundle.AnnotationContainerType] == "sandbox" && s.Annotations[bundle.AnnotationSandboxID] == req.ID
	return r
}
