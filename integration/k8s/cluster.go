// Package k8s runs ward under a real single-node Kubernetes: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet
// (v1.37.2, built from the Go module proxy by
// integration/admission/build.sh) on 127.0.0.1, with the harness's private
// containerd as the node's runtime and ward installed into a node root
// directory the way an operator (`ward install`) or the installer DaemonSet
// would. Tests drive it with kubectl only. Everything lives under one
// temporary directory and is torn down by PID: processes, mounts, the
// bridge, the kubepods cgroups, the host sysctls the kubelet changes and
// the /var/log directories it creates.
//
// Only loopback and the harness's test network (198.51.100.0/24: pods in
// the lower half, services in the upper half) are used.
//
// Tests skip unless WARD_K8S=1, WARD_INTEGRATION=1, root, and WARD_K8S_BIN
// names the binaries (make test-k8s sets all of them).
package k8s

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// The test network, split between pods and services.
const (
	PodSubnet     = "198.51.100.0/25"
	ServiceSubnet = "198.51.100.128/25"
	// NodeName is the node's name: the kubelet refuses a loopback node
	// IP, and "localhost" makes the API server reach it on 127.0.0.1
	// for logs and exec.
	NodeName = "localhost"
)

// hostSysctls are what the kubelet sets on the host; restored at teardown.
var hostSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// hostLogDirs are host directories the kubelet creates whatever its
// configuration says; removed at teardown when they did not exist before.
var hostLogDirs = []string{"/var/log/containers", "/var/log/pods"}

// Options says how the node starts.
type Options struct {
	// Ward runs `ward install` into the node root before containerd
	// starts, as an operator would, and applies the RuntimeClasses.
	Ward bool
}

// Cluster is a running single-node cluster.
type Cluster struct {
	t testing.TB
	// Dir holds everything; Node is the node's root directory, View the
	// translation of ward's files in it (see node.go).
	Dir, Node, View string
	// Bin holds the Kubernetes and etcd binaries.
	Bin         string
	KubeletRoot string
	Kubeconfig  string
	Containerd  *harness.Containerd
	PKI         *PKI
	// APIServer is https://127.0.0.1:PORT.
	APIServer string
	// Durations of the bring-up phases, for the report.
	Timings []string

	restarts atomic.Int32
	// podUIDs are the pods the kubelet ran, whose cgroups teardown removes.
	podUIDs []string
}

// Require skips t unless Kubernetes tests were asked for and can run; it
// returns the directory of the binaries.
func Require(t testing.TB) string {
	t.Helper()
	if os.Getenv("WARD_K8S") != "1" {
		t.Skip("Kubernetes test: set WARD_K8S=1 (make test-k8s)")
	}
	harness.Require(t)
	bin := os.Getenv("WARD_K8S_BIN")
	if bin == "" {
		t.Skip("needs the Kubernetes binaries: set WARD_K8S_BIN (make test-k8s builds them)")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("%s: %v (integration/admission/build.sh builds it)", b, err)
		}
	}
	return bin
}

// Start brings up a cluster and registers its teardown with t.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	bin := Require(t)
	dir := harness.NewDir(t)
	c := &Cluster{t: t, Dir: dir, Node: filepath.Join(dir, "node"), View: filepath.Join(dir, "view"), Bin: bin,
		KubeletRoot: filepath.Join(dir, "kubelet"), Kubeconfig: filepath.Join(dir, "kubeconfig")}
	// Runs last: after the processes are gone and containerd's cleanup
	// has unmounted and removed what the pods left.
	c.restoreHost(t)
	for _, d := range []string{c.Node, c.View, filepath.Join(dir, "pki"), filepath.Join(dir, "run/ward"), filepath.Join(dir, "runc-ward")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.makeNode(); err != nil {
		t.Fatal(err)
	}
	if err := c.writeHostStubs(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if o.Ward {
		c.InstallWard(t)
	}
	c.Containerd = harness.StartContainerd(t, harness.Config{Dir: dir, Subnet: PodSubnet,
		Env: []string{"WARD_CONFIG=" + filepath.Join(c.View, "ward.yaml")}})
	c.Containerd.Import(filepath.Join(c.View, "*.toml"))
	if err := c.writeContainerdPid(); err != nil {
		t.Fatal(err)
	}
	// Runs after the kubelet stops, before containerd's cleanup removes
	// Dir: the pods' UIDs name their cgroups.
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(c.KubeletRoot, "pods"))
		for _, e := range ents {
			c.podUIDs = append(c.podUIDs, e.Name())
		}
	})
	c.phase("containerd", begin)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go c.agent(ctx)

	begin = time.Now()
	p, err := NewPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c.PKI = p
	c.startControlPlane()
	c.startKubelet()
	c.waitNodeReady()
	c.phase("kubernetes", begin)
	if o.Ward {
		c.Kubectl("apply", "-f", filepath.Join(harness.RepoRoot(t), "contrib/kubernetes/runtimeclasses.yaml"))
		// The installer labels the node; with ward installed by hand the
		// operator does.
		c.Kubectl("label", "node", NodeName, "ward.dev/installed=true", "ward.dev/gvisor=true")
	}
	return c
}

func (c *Cluster) phase(name string, begin time.Time) {
	c.Timings = append(c.Timings, fmt.Sprintf("%s %.1fs", name, time.Since(begin).Seconds()))
}

// restoreHost records the host state the kubelet changes and registers
// its restoration.
func (c *Cluster) restoreHost(t testing.TB) {
	saved := map[string][]byte{}
	for _, s := range hostSysctls {
		if v, err := os.ReadFile("/proc/sys/" + s); err == nil {
			saved[s] = v
		}
	}
	var created []string
	for _, d := range hostLogDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			created = append(created, d)
		}
	}
	t.Cleanup(func() {
		for s, v := range saved {
			if now, _ := os.ReadFile("/proc/sys/" + s); string(now) != string(v) {
				if err := os.WriteFile("/proc/sys/"+s, v, 0o644); err != nil {
					t.Errorf("restoring sysctl %s: %v", s, err)
				}
			}
		}
		// Other tests' pods may share the kubepods parents, which the
		// harness then leaves: this cluster's own pod cgroups go here.
		for _, uid := range c.podUIDs {
			for _, qos := range []string{"", "burstable/", "besteffort/"} {
				hs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods/" + qos + "pod" + uid)
				for _, h := range hs {
					harness.RemoveCgroupTree(h)
				}
			}
		}
		for _, d := range created {
			// Only what this cluster's pods left: symlinks into Dir.
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				p := filepath.Join(d, e.Name())
				if dst, err := os.Readlink(p); err == nil && strings.HasPrefix(dst, c.Dir+"/") {
					os.Remove(p)
				}
			}
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Logf("leaving %s: %v", d, err)
			}
		}
	})
}

// FreePort is a TCP port on 127.0.0.1 free at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run starts one component, logging to Dir/NAME.log, and registers its
// end: SIGTERM, then SIGKILL.
func (c *Cluster) run(name string, args ...string) {
	c.t.Helper()
	logf, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.Bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting %s: %v", name, err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if c.t.Failed() {
			c.t.Logf("%s log tail:\n%s", name, c.LogTail(name, 25))
		}
	})
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) writeKubeconfig() {
	c.t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: ward-test
  cluster: {server: %q, certificate-authority: %q}
users:
- name: ward-test
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: ward-test
  context: {cluster: ward-test, user: ward-test, namespace: default}
current-context: ward-test
`, c.APIServer, c.PKI.Path("ca.crt"), c.PKI.Path("client.crt"), c.PKI.Path("client.key"))
	if err := os.WriteFile(c.Kubeconfig, []byte(cfg), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) startControlPlane() {
	c.t.Helper()
	t := c.t
	etcdPort, peerPort, apiPort := FreePort(t), FreePort(t), FreePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	c.run("etcd", "--data-dir", filepath.Join(c.Dir, "etcd"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "default="+peerURL)
	c.APIServer = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	p := c.PKI.Path
	c.run("kube-apiserver", "--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", p("server.crt"), "--tls-private-key-file", p("server.key"), "--client-ca-file", p("ca.crt"),
		"--service-account-key-file", p("sa.key"), "--service-account-signing-key-file", p("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--authorization-mode", "AlwaysAllow", "--allow-privileged=true",
		"--endpoint-reconciler-type", "none", "--service-cluster-ip-range", ServiceSubnet,
		"--kubelet-preferred-address-types", "Hostname,InternalIP",
		"--enable-priority-and-fairness=false")
	c.writeKubeconfig()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.PKI.TLS}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := client.Get(c.APIServer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready: %v\n%s", err, c.LogTail("kube-apiserver", 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
	c.run("kube-controller-manager", "--kubeconfig", c.Kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(FreePort(t)),
		"--service-account-private-key-file", p("sa.key"), "--root-ca-file", p("ca.crt"),
		"--service-cluster-ip-range", ServiceSubnet, "--allocate-node-cidrs=false")
	c.run("kube-scheduler", "--kubeconfig", c.Kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(FreePort(t)))
}

func (c *Cluster) startKubelet() {
	c.t.Helper()
	resolv := filepath.Join(c.Dir, "resolv.conf")
	// Pods use dnsPolicy Default: no name server, so no query leaves.
	if err := os.WriteFile(resolv, nil, 0o644); err != nil {
		c.t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
volumePluginDir: %s
resolvConf: %s
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 10s
`, FreePort(c.t), c.Containerd.Socket, filepath.Join(c.Dir, "log/pods"), filepath.Join(c.Dir, "volume-plugins"), resolv, c.PKI.Path("ca.crt"))
	path := filepath.Join(c.Dir, "kubelet.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.run("kubelet", "--config", path, "--kubeconfig", c.Kubeconfig, "--hostname-override", NodeName,
		"--root-dir", c.KubeletRoot, "--cert-dir", filepath.Join(c.Dir, "kubelet-pki"))
}

func (c *Cluster) waitNodeReady() {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := c.TryKubectl("get", "node", NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		sa, _ := c.TryKubectl("get", "serviceaccount", "default", "-o", "name")
		ca, _ := c.TryKubectl("get", "configmap", "kube-root-ca.crt", "-o", "name")
		if out == "True" && sa != "" && ca != "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node not Ready (%q), default service account %q, root CA %q\n%s", out, sa, ca, c.LogTail("kubelet", 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TryKubectl runs kubectl against the cluster and returns its stdout, or
// an error carrying stderr.
func (c *Cluster) TryKubectl(args ...string) (string, error) {
	return c.KubectlIn("", args...)
}

// KubectlIn is TryKubectl with stdin.
func (c *Cluster) KubectlIn(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Kubectl is TryKubectl that fails the test on an error.
func (c *Cluster) Kubectl(args ...string) string {
	c.t.Helper()
	out, err := c.TryKubectl(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// Apply applies a manifest given as text.
func (c *Cluster) Apply(t testing.TB, manifest string) {
	t.Helper()
	if out, err := c.KubectlIn(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// Restarts counts the installer's containerd restarts.
func (c *Cluster) Restarts() int { return int(c.restarts.Load()) }

// LogTail is the last n lines of a component's log (etcd, kubelet...).
func (c *Cluster) LogTail(name string, n int) string {
	return tail(filepath.Join(c.Dir, name+".log"), n)
}
