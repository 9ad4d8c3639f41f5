// Package admission runs ward's exported ValidatingAdmissionPolicy in a real
// kube-apiserver (with etcd) and checks, for every workload object of the
// manifest corpus, that the API server denies exactly what ward scan
// rejects and warns exactly for what it sandboxes.
//
// The binaries are heavy to build (about 12 minutes): `make test-admission`
// builds them once into a cache (integration/admission/build.sh) and runs
// this test; without WARD_K8S_BIN it skips.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/integration/k8s"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/policyexport"
	"github.com/ward-runtime/ward/internal/scan"
	"github.com/ward-runtime/ward/policy"
	yaml "go.yaml.in/yaml/v3"
)

// apiserver is a running etcd + kube-apiserver pair.
type apiserver struct {
	url    string
	client *http.Client
}

func start(t *testing.T, ctx context.Context, bin, dir string, name string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			if len(data) > 4000 {
				data = data[len(data)-4000:]
			}
			t.Logf("%s log tail:\n%s", name, data)
		}
	})
}

func startAPIServer(t *testing.T) *apiserver {
	t.Helper()
	bin := os.Getenv("WARD_K8S_BIN")
	if bin == "" {
		t.Skip("needs kube-apiserver and etcd: set WARD_K8S_BIN (make test-admission builds them)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := k8s.NewPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	etcdPort, peerPort, apiPort := k8s.FreePort(t), k8s.FreePort(t), k8s.FreePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	start(t, ctx, bin, dir, "etcd", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls", "http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-cluster", "default=http://127.0.0.1:"+strconv.Itoa(peerPort))
	f := p.Path
	start(t, ctx, bin, dir, "kube-apiserver",
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", f("server.crt"), "--tls-private-key-file", f("server.key"),
		"--client-ca-file", f("ca.crt"),
		"--service-account-key-file", f("sa.key"), "--service-account-signing-key-file", f("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--authorization-mode", "AlwaysAllow", "--allow-privileged=true",
		"--endpoint-reconciler-type", "none", "--service-cluster-ip-range", "198.51.100.128/25",
		// Pods are only created with dryRun: no controller-manager makes
		// service accounts.
		"--disable-admission-plugins", "ServiceAccount",
		"--enable-priority-and-fairness=false")
	a := &apiserver{url: "https://127.0.0.1:" + strconv.Itoa(apiPort), client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: p.TLS}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := a.client.Get(a.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// response is one API call's outcome.
type response struct {
	code     int
	body     string
	warnings []string
}

func (a *apiserver) post(t *testing.T, path string, obj any) response {
	t.Helper()
	js, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.client.Post(a.url+path, "application/json", bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, body: string(body), warnings: resp.Header.Values("Warning")}
}

// resourcePath is where objects of kind are created.
func resourcePath(kind, ns string) string {
	plural := map[string]string{"Pod": "pods", "ReplicationController": "replicationcontrollers", "Deployment": "deployments",
		"ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets", "Job": "jobs", "CronJob": "cronjobs"}[kind]
	switch kind {
	case "Pod", "ReplicationController":
		return "/api/v1/namespaces/" + ns + "/" + plural
	case "Job", "CronJob":
		return "/apis/batch/v1/namespaces/" + ns + "/" + plural
	}
	return "/apis/apps/v1/namespaces/" + ns + "/" + plural
}

func TestAPIServerAgreesWithScan(t *testing.T) {
	a := startAPIServer(t)
	root := harness.RepoRoot(t)
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	node := manifest.DefaultNode(p)
	v, err := policyexport.NewExporter(p, node).ValidatingAdmissionPolicy()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{"ValidatingAdmissionPolicy": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
		"ValidatingAdmissionPolicyBinding": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"}
	for _, o := range v.Objects() {
		js, _ := json.Marshal(o)
		var m map[string]any
		json.Unmarshal(js, &m)
		if r := a.post(t, paths[m["kind"].(string)], o); r.code != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", m["kind"], r.code, r.body)
		}
	}
	// The RuntimeClasses the corpus names, as a cluster with ward has them.
	rcs, err := os.ReadFile(filepath.Join(root, "contrib/kubernetes/runtimeclasses.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(rcs))
	for {
		var rc map[string]any
		if err := dec.Decode(&rc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if r := a.post(t, "/apis/node.k8s.io/v1/runtimeclasses", rc); r.code != http.StatusCreated {
			t.Fatalf("creating RuntimeClass: %d %s", r.code, r.body)
		}
	}
	objs, _, err := manifest.Read([]string{filepath.Join(root, "testdata/manifests")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	namespaces := map[string]bool{"default": true}
	for _, o := range objs {
		if o.Namespace != "" && !namespaces[o.Namespace] {
			namespaces[o.Namespace] = true
			r := a.post(t, "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": o.Namespace}})
			// kube-system and the like exist already.
			if r.code != http.StatusCreated && r.code != http.StatusConflict {
				t.Fatalf("namespace %s: %d %s", o.Namespace, r.code, r.body)
			}
		}
	}
	// The policy takes effect once the API server has compiled it: wait
	// for a privileged pod to be denied.
	probe := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "probe"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "a", "image": "b", "securityContext": map[string]any{"privileged": true}}}}}
	deadline := time.Now().Add(time.Minute)
	for {
		r := a.post(t, resourcePath("Pod", "default")+"?dryRun=All", probe)
		if refused(r) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy never denied a privileged pod: %d %s", r.code, r.body)
		}
		time.Sleep(500 * time.Millisecond)
	}

	s, err := scan.New(p, node)
	if err != nil {
		t.Fatal(err)
	}
	var agree, denied, warned int
	for i := range objs {
		o := &objs[i]
		rs, err := s.Object(o)
		if err != nil {
			t.Fatal(err)
		}
		wantDeny, wantWarn := scan.Admission(p, rs)
		u, err := o.Unstructured()
		if err != nil {
			t.Fatal(err)
		}
		ns := o.Namespace
		if ns == "" {
			ns = "default"
		}
		r := a.post(t, resourcePath(o.Kind, ns)+"?dryRun=All", u)
		gotDeny := refused(r)
		if !gotDeny && r.code != http.StatusCreated {
			t.Errorf("%s:%d %s %s: the API server refused it for another reason: %d %s", o.File, o.Line, o.Kind, o.Name, r.code, r.body)
			continue
		}
		gotWarn := slices.ContainsFunc(r.warnings, func(w string) bool { return strings.Contains(w, "ward will run this pod in a sandbox") })
		if gotDeny != wantDeny || (!gotDeny && gotWarn != wantWarn) {
			t.Errorf("%s:%d %s %s: API server deny=%v warn=%v (%.300s %v); ward scan reject=%v sandbox-rule=%v",
				o.File, o.Line, o.Kind, o.Name, gotDeny, gotWarn, r.body, r.warnings, wantDeny, wantWarn)
			continue
		}
		agree++
		if gotDeny {
			denied++
		}
		if gotWarn {
			warned++
		}
		if o.Name == "node-shell" {
			t.Logf("kube-apiserver on node-shell: %s", strings.TrimSpace(firstLine(r.body)))
		}
	}
	t.Logf("kube-apiserver: %d of %d objects agree with ward scan (%d denied, %d warned)", agree, len(objs), denied, warned)
}

// refused says the API server refused an object by ward's policy: 403, as
// for every ValidatingAdmissionPolicy denial without a reason (422 with
// one).
func refused(r response) bool {
	return (r.code == http.StatusForbidden || r.code == http.StatusUnprocessableEntity) && strings.Contains(r.body, policyexport.RejectName)
}

func firstLine(body string) string {
	var st struct{ Message string }
	if json.Unmarshal([]byte(body), &st) == nil && st.Message != "" {
		return st.Message
	}
	return fmt.Sprintf("%.300s", body)
}
