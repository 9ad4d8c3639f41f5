// Package helm tests ward's chart (contrib/helm/ward) and the plain
// manifests rendered from it (contrib/kubernetes). Without helm, the
// checked-in render is decoded strictly against the Kubernetes API types
// (make test); with WARD_HELM naming a helm binary (make test-helm), the
// chart is linted, rendered with several value sets, each render decoded
// and checked the same way, and the checked-in render compared with a
// fresh one.
package helm_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const chart = "ward"

// plain are the rendered manifests checked in under contrib/kubernetes.
var plain = []string{"ward-deploy.yaml", "runtimeclasses.yaml", "ward-cleanup.yaml"}

// decoder decodes the kinds the chart renders, refusing unknown and
// duplicate fields (as kubectl apply --validate=strict does).
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, nodev1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart writes (its CRD is not in k8s.io/api); decoded strictly, so a
// misspelt field fails.
type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   map[string]any     `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	NamespaceSelector struct {
		MatchNames []string `json:"matchNames"`
	} `json:"namespaceSelector"`
	Endpoints []struct {
		Port     string `json:"port"`
		Path     string `json:"path"`
		Interval string `json:"interval"`
	} `json:"endpoints"`
}

// object is one decoded document.
type object struct {
	where string
	obj   runtime.Object
	sm    *serviceMonitor
}

// decodeAll splits a multi-document render and decodes each document.
// With oa set, each is validated against Kubernetes' OpenAPI schema too.
func decodeAll(t *testing.T, name string, data []byte, oa *openAPI) []object {
	t.Helper()
	dec := decoder(t)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		if len(probe) == 0 {
			continue // only comments
		}
		where := fmt.Sprintf("%s: document %d (%v %v)", name, i, probe["kind"], nameOf(probe))
		if oa != nil {
			known, err := oa.check(doc)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			}
			if !known && probe["apiVersion"] != "monitoring.coreos.com/v1" {
				t.Errorf("%s: a kind Kubernetes' OpenAPI schema does not have", where)
			}
		}
		if probe["apiVersion"] == "monitoring.coreos.com/v1" {
			js, err := utilyaml.ToJSON(doc)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			d := json.NewDecoder(bytes.NewReader(js))
			d.DisallowUnknownFields()
			var sm serviceMonitor
			if err := d.Decode(&sm); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			out = append(out, object{where: where, sm: &sm})
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		out = append(out, object{where: where, obj: obj})
	}
	return out
}

func nameOf(m map[string]any) any {
	if md, ok := m["metadata"].(map[string]any); ok {
		return md["name"]
	}
	return nil
}

// check applies what the API server's validation would refuse in the fields
// the chart writes: names, labels, selectors that select the pod template,
// volume mounts of existing volumes, named ports, quantities.
func check(t *testing.T, o object) {
	t.Helper()
	errf := func(format string, args ...any) { t.Errorf("%s: %s", o.where, fmt.Sprintf(format, args...)) }
	meta := func(m interface {
		GetName() string
		GetNamespace() string
		GetLabels() map[string]string
	}, namespaced bool) {
		for _, msg := range validation.IsDNS1123Subdomain(m.GetName()) {
			errf("metadata.name %q: %s", m.GetName(), msg)
		}
		if namespaced != (m.GetNamespace() != "") {
			errf("metadata.namespace %q (namespaced: %v)", m.GetNamespace(), namespaced)
		}
		labels(errf, "metadata.labels", m.GetLabels())
	}
	switch v := o.obj.(type) {
	case *corev1.Namespace:
		meta(v, false)
	case *corev1.ServiceAccount:
		meta(v, true)
	case *corev1.ConfigMap:
		meta(v, true)
		for k := range v.Data {
			for _, msg := range validation.IsConfigMapKey(k) {
				errf("data key %q: %s", k, msg)
			}
		}
	case *corev1.Service:
		meta(v, true)
		labels(errf, "spec.selector", v.Spec.Selector)
		for _, p := range v.Spec.Ports {
			if p.TargetPort.StrVal != "" {
				for _, msg := range validation.IsValidPortName(p.TargetPort.StrVal) {
					errf("targetPort %q: %s", p.TargetPort.StrVal, msg)
				}
			}
		}
	case *rbacv1.ClusterRole:
		meta(v, false)
	case *rbacv1.ClusterRoleBinding:
		meta(v, false)
		if v.RoleRef.Kind != "ClusterRole" || v.RoleRef.Name == "" {
			errf("roleRef %+v", v.RoleRef)
		}
	case *nodev1.RuntimeClass:
		meta(v, false)
		for _, msg := range validation.IsDNS1123Label(v.Handler) {
			errf("handler %q: %s", v.Handler, msg)
		}
		if v.Scheduling == nil || len(v.Scheduling.NodeSelector) == 0 {
			errf("no scheduling.nodeSelector: its pods could land on nodes without the handler")
		} else {
			labels(errf, "scheduling.nodeSelector", v.Scheduling.NodeSelector)
		}
		if v.Overhead != nil {
			for r, q := range v.Overhead.PodFixed {
				if q.Sign() <= 0 {
					errf("overhead %s %s", r, q.String())
				}
			}
		}
	case *appsv1.DaemonSet:
		meta(v, true)
		if v.Spec.Selector == nil || len(v.Spec.Selector.MatchLabels) == 0 {
			errf("no spec.selector")
		} else {
			for k, want := range v.Spec.Selector.MatchLabels {
				if v.Spec.Template.Labels[k] != want {
					errf("selector %s=%s does not select the pod template (labels %v)", k, want, v.Spec.Template.Labels)
				}
			}
		}
		labels(errf, "spec.template.metadata.labels", v.Spec.Template.Labels)
		pod(errf, &v.Spec.Template.Spec)
	default:
		if o.sm == nil {
			errf("a kind this test does not know: %T", o.obj)
		}
	}
}

func labels(errf func(string, ...any), field string, m map[string]string) {
	for k, v := range m {
		for _, msg := range validation.IsQualifiedName(k) {
			errf("%s key %q: %s", field, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errf("%s[%s] value %q: %s", field, k, v, msg)
		}
	}
}

func pod(errf func(string, ...any), ps *corev1.PodSpec) {
	volumes := map[string]bool{}
	for _, v := range ps.Volumes {
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errf("volume %q: %s", v.Name, msg)
		}
		volumes[v.Name] = true
	}
	if len(ps.Containers) == 0 {
		errf("no containers")
	}
	var names []string
	for _, c := range ps.Containers {
		if slices.Contains(names, c.Name) {
			errf("container %q twice", c.Name)
		}
		names = append(names, c.Name)
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errf("container %q: %s", c.Name, msg)
		}
		if c.Image == "" {
			errf("container %s: no image", c.Name)
		}
		// A name set twice would take the last value: a value the chart
		// sets would silently lose to a default.
		env := map[string]bool{}
		for _, e := range c.Env {
			if env[e.Name] {
				errf("container %s: env %s twice", c.Name, e.Name)
			}
			env[e.Name] = true
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				errf("container %s mounts volume %q, which the pod does not have", c.Name, m.Name)
			}
			if !filepath.IsAbs(m.MountPath) {
				errf("container %s: mountPath %q", c.Name, m.MountPath)
			}
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if p.Name != "" {
				for _, msg := range validation.IsValidPortName(p.Name) {
					errf("port %q: %s", p.Name, msg)
				}
				ports[p.Name] = true
			}
			for _, msg := range validation.IsValidPortNum(int(p.ContainerPort)) {
				errf("containerPort %d: %s", p.ContainerPort, msg)
			}
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if probe != nil && probe.HTTPGet != nil && probe.HTTPGet.Port.StrVal != "" && !ports[probe.HTTPGet.Port.StrVal] {
				errf("container %s: probe on port %q, which it does not declare", c.Name, probe.HTTPGet.Port.StrVal)
			}
		}
	}
}

// TestPlainManifests: the checked-in render decodes strictly and passes the
// checks, and it says what the chart's defaults say.
func TestPlainManifests(t *testing.T) {
	oa := schemaOf(t)
	kinds := map[string]int{}
	for _, f := range plain {
		data, err := os.ReadFile(filepath.Join("..", "kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("# Generated by `make manifests`")) {
			t.Errorf("%s: not the chart's render (make manifests)", f)
		}
		for _, o := range decodeAll(t, f, data, oa) {
			check(t, o)
			kinds[fmt.Sprintf("%T", o.obj)]++
		}
	}
	want := map[string]int{"*v1.Namespace": 1, "*v1.ServiceAccount": 1, "*v1.ConfigMap": 1, "*v1.ClusterRole": 1,
		"*v1.ClusterRoleBinding": 1, "*v1.DaemonSet": 3, "*v1.RuntimeClass": 3}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("objects: %v, want %v", kinds, want)
	}
}

// TestValuesSchema: the chart's defaults satisfy its schema, and the
// schema refuses what it is there to refuse.
func TestValuesSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(filepath.Join(chart, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	load := func(data []byte) any {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		// Through JSON: the validator wants JSON's types.
		js, _ := json.Marshal(v)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	if err := sch.Validate(load(data)); err != nil {
		t.Errorf("values.yaml: %v", err)
	}
	for name, bad := range map[string]string{
		"misspelt":              "metrics: {enabeld: true}\n",
		"port as a string":      "metrics: {port: \"9743\"}\n",
		"class without a label": "runtimeClasses: {ward: {enabled: true, handler: ward, nodeSelector: {}}}\n",
		"handler not a label":   "runtimeClasses: {ward: {enabled: true, handler: Ward_1, nodeSelector: {a: b}}}\n",
		"bad interval":          "metrics: {serviceMonitor: {interval: 30}}\n",
		"host pid 0":            "installer: {hostProcess: {pid: 0}}\n",
		"relative pid file":     "installer: {hostProcess: {pidFile: run/containerd.pid}}\n",
	} {
		if err := sch.Validate(load([]byte(bad))); err == nil {
			t.Errorf("%s: the schema accepts %q", name, bad)
		}
	}
}

// schemaOf is Kubernetes' OpenAPI schema when WARD_K8S_OPENAPI names its
// swagger.json (make test-helm sets it), else nil.
func schemaOf(t *testing.T) *openAPI {
	t.Helper()
	path := os.Getenv("WARD_K8S_OPENAPI")
	if path == "" {
		t.Log("WARD_K8S_OPENAPI unset: not validating against Kubernetes' OpenAPI schema (make test-helm does)")
		return nil
	}
	return loadOpenAPI(t, path)
}

// helm is the helm binary make test-helm built, or a skip.
func helm(t *testing.T) string {
	t.Helper()
	h := os.Getenv("WARD_HELM")
	if h == "" {
		t.Skip("WARD_HELM unset: make test-helm builds helm and runs this")
	}
	return h
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), stderr.String())
	}
	return out.Bytes()
}

// TestChart: helm lint, then renders of the chart with the value sets an
// operator would use, each decoded strictly and checked; the checked-in
// plain manifests equal a fresh render.
func TestChart(t *testing.T) {
	h := helm(t)
	oa := schemaOf(t)
	run(t, h, "lint", "--strict", "--kube-version", "v1.37.0", chart)
	for name, c := range map[string]struct {
		set   []string
		kinds []string
	}{
		"defaults": {nil, []string{"*v1.ServiceAccount", "*v1.ConfigMap", "*v1.ClusterRole", "*v1.ClusterRoleBinding",
			"*v1.DaemonSet", "*v1.DaemonSet", "*v1.RuntimeClass", "*v1.RuntimeClass", "*v1.RuntimeClass"}},
		"uninstall": {[]string{"uninstall=true"}, []string{"*v1.ServiceAccount", "*v1.ClusterRole", "*v1.ClusterRoleBinding", "*v1.DaemonSet"}},
		"everything": {[]string{"createNamespace=true", "metrics.serviceMonitor.enabled=true", "metrics.service.annotations.a=b",
			"installer.searchPath=/usr/bin", "installer.priorityClassName=system-node-critical", "imagePullSecrets[0].name=regcred",
			"installer.hostProcess.pid=4242", "installer.hostProcess.pidFile=/run/containerd/containerd.pid",
			"installer.nodeSelector.pool=ward", "runtimeClasses.ward.tolerations[0].key=k", "runtimeClasses.ward.tolerations[0].operator=Exists",
			"image.repository=registry.example/ward-installer", "image.tag=v9.9.9"},
			[]string{"*v1.Namespace", "*v1.ServiceAccount", "*v1.ConfigMap", "*v1.ClusterRole", "*v1.ClusterRoleBinding", "*v1.Service",
				"*v1.DaemonSet", "*v1.DaemonSet", "*v1.RuntimeClass", "*v1.RuntimeClass", "*v1.RuntimeClass", "<nil>"}},
		"minimal": {[]string{"metrics.enabled=false", "nodePolicy.enabled=false", "runtimeClasses.ward-kata.enabled=false", "runtimeClasses.ward-gvisor.enabled=false"},
			[]string{"*v1.ServiceAccount", "*v1.ClusterRole", "*v1.ClusterRoleBinding", "*v1.DaemonSet", "*v1.RuntimeClass"}},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", "ward", chart, "--namespace", "ward-system", "--kube-version", "v1.37.0"}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			var kinds []string
			for _, o := range decodeAll(t, name, run(t, h, args...), oa) {
				check(t, o)
				kinds = append(kinds, fmt.Sprintf("%T", o.obj))
			}
			slices.Sort(kinds)
			want := slices.Sorted(slices.Values(c.kinds))
			if !slices.Equal(kinds, want) {
				t.Errorf("objects %v, want %v", kinds, want)
			}
		})
	}
	// What the schema refuses, helm refuses before rendering.
	cmd := exec.Command(h, "template", "ward", chart, "--kube-version", "v1.37.0", "--set", "metrics.prot=1")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "prot") {
		t.Errorf("a misspelt value rendered (err %v):\n%s", err, out)
	}
	// The checked-in render is the chart's.
	dir := t.TempDir()
	run(t, "sh", "render.sh", h, dir)
	for _, f := range plain {
		fresh, _ := os.ReadFile(filepath.Join(dir, f))
		in, _ := os.ReadFile(filepath.Join("..", "kubernetes", f))
		if !bytes.Equal(fresh, in) {
			t.Errorf("contrib/kubernetes/%s differs from the chart's render: run make manifests", f)
		}
	}
}

// TestDecodeRefuses: the decoding the renders go through refuses what an
// API server with strict field validation refuses.
func TestDecodeRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\nhandler: x\nschedulng: {}\n",
		"duplicate field": "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\nhandler: x\nhandler: y\n",
		"wrong type":      "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {template: {spec: {hostPID: \"yes\"}}}\n",
		"bad quantity":    "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\nhandler: x\noverhead: {podFixed: {cpu: lots}}\n",
		"unknown kind":    "apiVersion: node.k8s.io/v1\nkind: RuntimeKlass\nmetadata: {name: x}\n",
	} {
		if _, _, err := decoder(t).Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestOpenAPIRefuses: the OpenAPI validation refuses what the strict
// decoding cannot see (a required field missing) and unknown fields.
func TestOpenAPIRefuses(t *testing.T) {
	oa := schemaOf(t)
	if oa == nil {
		t.Skip("no schema")
	}
	good := "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\nhandler: x\noverhead: {podFixed: {cpu: 1, memory: 64Mi}}\n"
	for name, doc := range map[string]string{
		"no handler":            "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\n",
		"unknown field":         "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\nhandler: x\nschedulng: {}\n",
		"container no name":     "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {selector: {}, template: {spec: {containers: [{image: i}]}}}\n",
		"daemonset no selector": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: c, image: i}]}}}\n",
	} {
		if _, err := oa.check([]byte(doc)); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if _, err := oa.check([]byte(good)); err != nil {
		t.Errorf("a valid RuntimeClass: %v", err)
	}
}
