package k8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/install"
)

// forNode adapts one of contrib/kubernetes's DaemonSet manifests to the
// test's node, refusing to go on if any part of it would still reach this
// machine's own /: the host path becomes the node root; the pod shares the
// host's network to reach the API server on 127.0.0.1 (no kube-proxy
// here), and finds the node's stand-in systemctl and containerd first on
// its $PATH when it enters the host's namespaces (node.go).
func (c *Cluster) forNode(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "contrib/kubernetes", file))
	if err != nil {
		t.Fatal(err)
	}
	port := strings.TrimPrefix(c.APIServer, "https://127.0.0.1:")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("API server %s", c.APIServer)
	}
	env := "          env:\n" +
		"            - {name: PATH, value: \"" + filepath.Join(c.Dir, "hostbin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"}\n" +
		"            - {name: KUBERNETES_SERVICE_HOST, value: \"127.0.0.1\"}\n" +
		"            - {name: KUBERNETES_SERVICE_PORT, value: \"" + port + "\"}\n" +
		"            - {name: WARD_SEARCH_PATH, value: \"" + NodeSearchPath + "\"}\n"
	s := string(data)
	for _, r := range []struct{ old, new string }{
		{"          hostPath:\n            path: /\n", "          hostPath:\n            path: " + c.Node + "\n"},
		{"      hostPID: true\n", "      hostPID: true\n      hostNetwork: true\n"},
		{"          env:\n", env},
	} {
		if strings.Count(s, r.old) != 1 {
			t.Fatalf("%s: %q is not there once: the test's patch needs updating", file, r.old)
		}
		s = strings.Replace(s, r.old, r.new, 1)
	}
	if strings.Contains(s, "path: /\n") {
		t.Fatalf("%s still mounts the host's /", file)
	}
	return s
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

// TestInstallerDaemonSet installs ward on a node that has none with
// contrib/kubernetes's DaemonSet and a locally built image, rolls the
// DaemonSet, and uninstalls with the explicit cleanup DaemonSet.
func TestInstallerDaemonSet(t *testing.T) {
	begin := time.Now()
	c := Start(t, Options{})
	t.Logf("cluster up in %.1fs (%s)", time.Since(begin).Seconds(), strings.Join(c.Timings, ", "))

	image := filepath.Join(c.Dir, "installer.tar")
	if out, err := exec.Command(filepath.Join(harness.RepoRoot(t), "contrib/kubernetes/build-image.sh"), image, filepath.Join(c.Bin, "kubectl")).CombinedOutput(); err != nil {
		t.Fatalf("building the installer image: %v\n%s", err, out)
	}
	if _, stderr, err := c.Containerd.Ctr("-n", harness.K8sNamespace, "images", "import", image); err != nil {
		t.Fatalf("importing the installer image: %v: %s", err, stderr)
	}
	c.Kubectl("apply", "-f", filepath.Join(harness.RepoRoot(t), "contrib/kubernetes/runtimeclasses.yaml"))

	c.Apply(t, c.forNode(t, "ward-deploy.yaml"))
	c.rolloutDaemonSet(t, "ward-deploy")
	t.Logf("installer log:\n%s", c.Kubectl("-n", "ward-system", "logs", "daemonset/ward-deploy"))
	if l := c.labels(t); !strings.Contains(l, `"ward.dev/installed":"true"`) || !strings.Contains(l, `"ward.dev/gvisor":"true"`) {
		t.Fatalf("node labels after the install: %s", l)
	}
	if c.Restarts() != 1 {
		t.Errorf("containerd restarted %d times by the install, want 1", c.Restarts())
	}
	c.Apply(t, js(deployment("on-ward", "default", podSpec("ward", probe+"; exec sleep 100000", nil))))
	c.waitRollout(t, "default", "on-ward")
	checkHardened(t, "pod after the DaemonSet's install", c.logsUntil(t, "default", "on-ward", "probed"))

	// A rollout: the new pod finds ward installed, nothing to restart.
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

	// The explicit uninstall, pods moved off ward first.
	c.Kubectl("delete", "deployment", "on-ward", "--wait=true")
	c.Kubectl("-n", "ward-system", "delete", "daemonset", "ward-deploy", "--wait=true")
	c.Apply(t, c.forNode(t, "ward-cleanup.yaml"))
	c.rolloutDaemonSet(t, "ward-cleanup")
	t.Logf("cleanup log:\n%s", c.Kubectl("-n", "ward-system", "logs", "daemonset/ward-cleanup"))
	if l := c.labels(t); strings.Contains(l, "ward.dev/") {
		t.Errorf("node labels after the uninstall: %s", l)
	}
	for _, p := range []string{install.DropInPath, install.ManifestPath, "/usr/local/bin/containerd-shim-ward-v2", install.NodeConfigPath} {
		if _, err := os.Stat(filepath.Join(c.Node, p)); err == nil {
			t.Errorf("left after the uninstall: %s", p)
		}
	}
	if dump, _, err := c.Containerd.Ctr("version"); err != nil {
		t.Errorf("containerd after the uninstall: %v %s", err, dump)
	}
	if out, err := exec.Command(filepath.Join(c.Dir, "hostbin/containerd"), "config", "dump").Output(); err != nil || strings.Contains(string(out), "runtimes.ward") {
		t.Errorf("containerd's configuration after the uninstall still has a ward handler (%v)", err)
	}
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
