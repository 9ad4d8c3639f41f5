package k8s

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/install"
)

// nodePatch says how ward's node DaemonSets are adapted to the test's
// node, which is a directory on this machine rather than a machine.
type nodePatch struct {
	// Node is the node's root, mounted instead of the host's /.
	Node string
	// HostBin holds the node's stand-in systemctl and containerd, first
	// on the pod's $PATH.
	HostBin string
	// APIPort is the API server's port on 127.0.0.1.
	APIPort string
	// Env is more of the pod's environment, as NAME=value: what an
	// operator of the plain manifests would edit in (the chart takes
	// them as values).
	Env []string
}

// hostPathRe finds every hostPath a manifest mounts.
var hostPathRe = regexp.MustCompile(`hostPath:\n\s+path: (\S+)\n`)

// patch adapts a render of ward's node DaemonSets (the plain manifests,
// or everything the chart renders) to the test's node, refusing to go on
// if any part of it would still reach this machine's own files: the host
// path becomes the node root, the metrics daemon's log directory the
// node's; the installer's pod shares the host's network to reach the API
// server on 127.0.0.1 (no kube-proxy here), and finds the node's stand-in
// systemctl and containerd first on its $PATH when it enters the host's
// mount namespace (node.go).
func (p nodePatch) patch(s string) (string, error) {
	env := "          env:\n" +
		"            - {name: PATH, value: \"" + p.HostBin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"}\n" +
		"            - {name: KUBERNETES_SERVICE_HOST, value: \"127.0.0.1\"}\n" +
		"            - {name: KUBERNETES_SERVICE_PORT, value: \"" + p.APIPort + "\"}\n"
	for _, e := range p.Env {
		name, value, _ := strings.Cut(e, "=")
		env += "            - {name: " + name + ", value: \"" + value + "\"}\n"
	}
	for _, r := range []struct {
		old, new string
		// optional: the metrics daemon is not in every render.
		optional bool
	}{
		{"          hostPath:\n            path: /\n", "          hostPath:\n            path: " + p.Node + "\n", false},
		{"      hostPID: true\n", "      hostPID: true\n      hostNetwork: true\n", false},
		{"          env:\n", env, false},
		{"            path: " + install.LogDir + "\n", "            path: " + p.Node + install.LogDir + "\n", true},
	} {
		switch n := strings.Count(s, r.old); {
		case n == 0 && r.optional:
		case n != 1:
			return "", fmt.Errorf("%q is there %d times, not once: the test's patch needs updating", r.old, n)
		default:
			s = strings.Replace(s, r.old, r.new, 1)
		}
	}
	for _, m := range hostPathRe.FindAllStringSubmatch(s, -1) {
		if !strings.HasPrefix(m[1], p.Node+"/") && m[1] != p.Node {
			return "", fmt.Errorf("a hostPath outside the node root is left: %s", m[1])
		}
	}
	return s, nil
}

// postRenderEnv, when set, makes the test binary helm's post-renderer:
// it holds a nodePatch as JSON, and the binary patches the render on
// stdin to stdout instead of running tests.
const postRenderEnv = "WARD_K8S_POST_RENDER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(postRenderEnv); spec != "" {
		os.Exit(postRender(spec))
	}
	os.Exit(m.Run())
}

func postRender(spec string) int {
	var p nodePatch
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", postRenderEnv, err)
		return 2
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, err := p.patch(string(in))
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration/k8s post-renderer: %v\n", err)
		return 1
	}
	fmt.Print(out)
	return 0
}

func (c *Cluster) nodePatch(t *testing.T, env ...string) nodePatch {
	t.Helper()
	port := strings.TrimPrefix(c.APIServer, "https://127.0.0.1:")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("API server %s", c.APIServer)
	}
	return nodePatch{Node: c.Node, HostBin: filepath.Join(c.Dir, "hostbin"), APIPort: port, Env: env}
}

// forNode is one of contrib/kubernetes's manifests patched for the node,
// with the two settings an operator of this machine would edit in: where
// the runtimes are and which process's mount namespace is the host's.
func (c *Cluster) forNode(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "contrib/kubernetes", file))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.nodePatch(t, "WARD_SEARCH_PATH="+NodeSearchPath, "WARD_HOST_PIDFILE="+ContainerdPidFile).patch(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return s
}

// importInstallerImage builds the installer image as `make
// installer-image` does and imports it into the node's containerd.
func (c *Cluster) importInstallerImage(t *testing.T) {
	t.Helper()
	image := filepath.Join(c.Dir, "installer.tar")
	if out, err := exec.Command(filepath.Join(harness.RepoRoot(t), "contrib/kubernetes/build-image.sh"), image, filepath.Join(c.Bin, "kubectl")).CombinedOutput(); err != nil {
		t.Fatalf("building the installer image: %v\n%s", err, out)
	}
	if _, stderr, err := c.Containerd.Ctr("-n", harness.K8sNamespace, "images", "import", image); err != nil {
		t.Fatalf("importing the installer image: %v: %s", err, stderr)
	}
}

func (c *Cluster) rolloutDaemonSet(t *testing.T, name string) {
	t.Helper()
	if out, err := c.TryKubectl("-n", "ward-system", "rollout", "status", "daemonset/"+name, "--timeout", "180s"); err != nil {
		logs, _ := c.TryKubectl("-n", "ward-system", "logs", "daemonset/"+name, "--all-containers")
		desc, _ := c.TryKubectl("-n", "ward-system", "describe", "pods")
		t.Fatalf("%v\n%s\nlogs:\n%s\n%s", err, out, logs, desc)
	}
}

func (c *Cluster) labels(t *testing.T) string {
	t.Helper()
	return c.Kubectl("get", "node", NodeName, "-o", "jsonpath={.metadata.labels}")
}

// checkInstalled follows a first install by the installer DaemonSet: its
// pod Ready, the node labelled, containerd restarted once, the metrics
// daemon running there, and a Deployment on RuntimeClass ward hardened.
func (c *Cluster) checkInstalled(t *testing.T) {
	t.Helper()
	c.rolloutDaemonSet(t, "ward-deploy")
	t.Logf("installer log:\n%s", c.Kubectl("-n", "ward-system", "logs", "daemonset/ward-deploy"))
	if l := c.labels(t); !strings.Contains(l, `"ward.dev/installed":"true"`) || !strings.Contains(l, `"ward.dev/gvisor":"true"`) {
		t.Fatalf("node labels after the install: %s", l)
	}
	if c.Restarts() != 1 {
		t.Errorf("containerd restarted %d times by the install, want 1", c.Restarts())
	}
	c.rolloutDaemonSet(t, "ward-metrics")
	t.Logf("what a user sees:\n%s\n%s", c.Kubectl("get", "nodes", "-L", "ward.dev/installed,ward.dev/gvisor"),
		c.Kubectl("-n", "ward-system", "get", "daemonsets,pods"))
	c.Apply(t, js(deployment("on-ward", "default", podSpec("ward", probe+"; exec sleep 100000", nil))))
	c.waitRollout(t, "default", "on-ward")
	checkHardened(t, "pod after the DaemonSet's install", c.logsUntil(t, "default", "on-ward", "probed"))
}

// checkRollout rolls the installer DaemonSet: the new pod finds ward
// installed and restarts nothing, and pods on ward still start hardened.
func (c *Cluster) checkRollout(t *testing.T) {
	t.Helper()
	c.Kubectl("-n", "ward-system", "rollout", "restart", "daemonset/ward-deploy")
	c.rolloutDaemonSet(t, "ward-deploy")
	if c.Restarts() != 1 {
		t.Errorf("the DaemonSet's rollout restarted containerd (%d restarts)", c.Restarts())
	}
	if l := c.labels(t); !strings.Contains(l, `"ward.dev/installed":"true"`) {
		t.Errorf("node labels after the rollout: %s", l)
	}
	if _, err := os.Stat(filepath.Join(c.Node, install.ManifestPath)); err != nil {
		t.Errorf("after the rollout: %v", err)
	}
	c.Kubectl("rollout", "restart", "deployment/on-ward")
	c.waitRollout(t, "default", "on-ward")
	checkHardened(t, "pod after the DaemonSet's rollout", c.exec(t, "default", "on-ward", "sh", "-c", probe))
}

// checkUninstalled follows the cleanup DaemonSet: its pod Ready, the
// labels gone, ward's files and handler gone, containerd restarted
// (twice in all) and answering.
func (c *Cluster) checkUninstalled(t *testing.T) {
	t.Helper()
	c.rolloutDaemonSet(t, "ward-cleanup")
	t.Logf("cleanup log:\n%s", c.Kubectl("-n", "ward-system", "logs", "daemonset/ward-cleanup"))
	if l := c.labels(t); strings.Contains(l, "ward.dev/") {
		t.Errorf("node labels after the uninstall: %s", l)
	}
	for _, p := range []string{install.DropInPath, "/usr/local/bin/containerd-shim-ward-v2", install.NodeConfigPath} {
		if _, err := os.Stat(filepath.Join(c.Node, p)); err == nil {
			t.Errorf("left after the uninstall: %s", p)
		}
	}
	// The node policy the installer wrote is not ward install's, so ward
	// uninstall leaves it (leave-modified) and its record lists it alone.
	if data, err := os.ReadFile(filepath.Join(c.Node, install.ManifestPath)); err == nil {
		var m struct{ Files []struct{ Path string } }
		if err := json.Unmarshal(data, &m); err != nil || len(m.Files) != 1 || m.Files[0].Path != install.PolicyPath {
			t.Errorf("the install record after the uninstall (%v):\n%s", err, data)
		}
	}
	if c.Restarts() != 2 {
		t.Errorf("containerd restarted %d times by install and uninstall, want 2", c.Restarts())
	}
	if dump, _, err := c.Containerd.Ctr("version"); err != nil {
		t.Errorf("containerd after the uninstall: %v %s", err, dump)
	}
	if out, err := exec.Command(filepath.Join(c.Dir, "hostbin/containerd"), "config", "dump").Output(); err != nil || strings.Contains(string(out), "runtimes.ward") {
		t.Errorf("containerd's configuration after the uninstall still has a ward handler (%v)", err)
	}
}

// TestInstallerDaemonSet installs ward on a node that has none with
// contrib/kubernetes's plain manifests and a locally built image, rolls the
// DaemonSet, and uninstalls with the explicit cleanup DaemonSet.
func TestInstallerDaemonSet(t *testing.T) {
	begin := time.Now()
	c := Start(t, Options{})
	t.Logf("cluster up in %.1fs (%s)", time.Since(begin).Seconds(), strings.Join(c.Timings, ", "))
	c.importInstallerImage(t)
	c.Kubectl("apply", "-f", filepath.Join(harness.RepoRoot(t), "contrib/kubernetes/runtimeclasses.yaml"))

	c.Apply(t, c.forNode(t, "ward-deploy.yaml"))
	c.checkInstalled(t)
	c.checkRollout(t)

	// The explicit uninstall, pods moved off ward first.
	c.Kubectl("delete", "deployment", "on-ward", "--wait=true")
	c.Kubectl("-n", "ward-system", "delete", "daemonset", "ward-deploy", "--wait=true")
	c.Apply(t, c.forNode(t, "ward-cleanup.yaml"))
	c.checkUninstalled(t)
	// A new pod on RuntimeClass ward has no node to go to.
	c.Apply(t, js(deployment("after-uninstall", "default", podSpec("ward", "sleep 100000", nil))))
	deadline := time.Now().Add(60 * time.Second)
	for {
		desc, _ := c.TryKubectl("describe", "pods", "-l", "app=after-uninstall")
		if strings.Contains(desc, "FailedScheduling") {
			t.Logf("a RuntimeClass-ward pod after the uninstall:\n%s", c.Kubectl("get", "pods", "-l", "app=after-uninstall"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a RuntimeClass-ward pod after the uninstall was not held back by the scheduler:\n%s", desc)
		}
		time.Sleep(time.Second)
	}
	c.Kubectl("-n", "ward-system", "delete", "daemonset", "ward-cleanup")
}

// helm runs the helm binary WARD_HELM names against the cluster, with its
// cache and configuration under the test's directory.
func (c *Cluster) helm(t *testing.T, bin string, post nodePatch, args ...string) string {
	t.Helper()
	if post.Node != "" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--post-renderer", self)
	}
	spec, err := json.Marshal(post)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, "--kubeconfig", c.Kubeconfig)...)
	home := filepath.Join(c.Dir, "helm")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	if post.Node != "" {
		cmd.Env = append(cmd.Env, postRenderEnv+"="+string(spec))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestHelmChart installs ward with the Helm chart contrib/helm/ward into
// the cluster as docs/kubernetes.md tells an operator to, rolls the
// installer, then uninstalls the documented way: `helm upgrade --set
// uninstall=true`, then `helm uninstall`. The chart's own values say where
// the node's runtimes are and which host process to enter
// (installer.searchPath, installer.hostProcess.pidFile); helm's
// post-renderer (this test binary) only points the host paths at the
// node root and the pod at the API server on 127.0.0.1.
func TestHelmChart(t *testing.T) {
	helmBin := os.Getenv("WARD_HELM")
	if helmBin == "" {
		Require(t)
		t.Skip("needs helm: set WARD_HELM (make test-k8s builds it as make test-helm does)")
	}
	begin := time.Now()
	c := Start(t, Options{})
	t.Logf("cluster up in %.1fs (%s)", time.Since(begin).Seconds(), strings.Join(c.Timings, ", "))
	c.importInstallerImage(t)
	chart := filepath.Join(harness.RepoRoot(t), "contrib/helm/ward")
	post := c.nodePatch(t)

	t.Logf("helm install:\n%s", c.helm(t, helmBin, post, "install", "ward", chart, "-n", "ward-system", "--create-namespace",
		"--set", "installer.searchPath="+NodeSearchPath, "--set", "installer.hostProcess.pidFile="+ContainerdPidFile))
	if out, err := c.TryKubectl("get", "runtimeclass", "ward", "ward-gvisor", "ward-kata"); err != nil {
		t.Fatalf("the chart's RuntimeClasses: %v", err)
	} else {
		t.Logf("kubectl get runtimeclass:\n%s", out)
	}
	c.checkInstalled(t)
	c.checkRollout(t)

	c.Kubectl("delete", "deployment", "on-ward", "--wait=true")
	c.helm(t, helmBin, post, "upgrade", "ward", chart, "-n", "ward-system", "--reuse-values", "--set", "uninstall=true")
	c.checkUninstalled(t)
	if out, _ := c.TryKubectl("get", "runtimeclass", "-o", "name"); strings.Contains(out, "ward") {
		t.Errorf("RuntimeClasses after the uninstall: %s", out)
	}
	c.helm(t, helmBin, nodePatch{}, "uninstall", "ward", "-n", "ward-system", "--wait")
	if out := c.Kubectl("-n", "ward-system", "get", "daemonsets,configmaps,serviceaccounts", "-o", "name"); strings.Contains(out, "ward-") {
		t.Errorf("left by helm uninstall: %s", out)
	}
	if out, _ := c.TryKubectl("get", "clusterrole,clusterrolebinding", "ward-deploy", "-o", "name"); out != "" {
		t.Errorf("left by helm uninstall: %s", out)
	}
	if out := c.helm(t, helmBin, nodePatch{}, "list", "-A", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("helm list after the uninstall: %s", out)
	}
}
