// Package deploy tests contrib/kubernetes/ward-deploy.sh, the script of
// ward's node DaemonSets, against a temp root, with stand-ins for the
// cluster and the host's init (kubectl, nsenter, systemctl, containerd):
// what a rollout does to a node (nothing) and what the explicit uninstall
// does.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/install"
)

// stubs are the stand-ins: each logs its arguments to calls.log.
// containerd config dump prints the drop-in, as containerd's merge of its
// imports would contain it.
func stubs(t *testing.T, dir, root string) {
	t.Helper()
	logf := filepath.Join(dir, "calls.log")
	for name, body := range map[string]string{
		"kubectl": `echo "kubectl $*" >>` + logf,
		// Only $ACTIVE_UNIT is active.
		"systemctl":  `echo "systemctl $*" >>` + logf + `; if [ "$1" = is-active ] && [ "$3" != "${ACTIVE_UNIT:-containerd}" ]; then exit 3; fi`,
		"nsenter":    `echo "nsenter $*" >>` + logf + `; while [ "$1" != -- ]; do shift; done; shift; exec "$@"`,
		"containerd": `echo "containerd $*" >>` + logf + `; cat ` + filepath.Join(root, install.DropInPath),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

type node struct {
	t                    *testing.T
	root, stubDir, ready string
	script, ward         string
	env                  []string
}

func newNode(t *testing.T) *node {
	return newNodeWith(t, install.ContainerdConf, "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n")
}

// newNodeWith is a node whose containerd reads the root file config.
func newNodeWith(t *testing.T, config, body string) *node {
	harness.Require(t)
	n := &node{t: t, root: t.TempDir(), stubDir: t.TempDir(), script: filepath.Join(harness.RepoRoot(t), "contrib/kubernetes/ward-deploy.sh"), ward: harness.WardBin(t, "ward")}
	n.ready = filepath.Join(n.stubDir, "ready")
	stubs(t, n.stubDir, n.root)
	for p, data := range map[string]string{
		"/usr/sbin/runc": "#!/bin/sh\necho 'runc version 1.4.4'\n",
		config:           body,
	} {
		full := filepath.Join(n.root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// start runs the script in mode until it is waiting (the log says so),
// and returns it running.
func (n *node) start(mode, until string) (*exec.Cmd, *logFile) {
	n.t.Helper()
	cmd := exec.Command("/bin/sh", n.script, mode)
	// The host process to enter is this test's own (the stand-in nsenter
	// does not enter it): PID 1 cannot be entered on every machine the
	// tests run on. TestDeployHostProcess tests the choice itself.
	cmd.Env = append(append(os.Environ(), "WARD_HOST_PID="+strconv.Itoa(os.Getpid())), n.env...)
	cmd.Env = append(cmd.Env, "PATH="+n.stubDir+":"+os.Getenv("PATH"), "NODE_NAME=node-1",
		"WARD_HOST_ROOT="+n.root, "WARD="+n.ward, "WARD_READY_FILE="+n.ready, "WARD_SEARCH_PATH=/usr/sbin:/usr/bin")
	f, err := os.CreateTemp(n.stubDir, mode+"-*.log")
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	out := &logFile{f.Name()}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), until) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			n.t.Fatalf("%s: no %q in:\n%s", mode, until, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd, out
}

// logFile is a script's output, written to a file so that no pipe is left
// open by its children.
type logFile struct{ path string }

func (l *logFile) String() string {
	data, _ := os.ReadFile(l.path)
	return string(data)
}

// stop sends SIGTERM, as the kubelet does, and wants exit 0.
func (n *node) stop(cmd *exec.Cmd) {
	n.t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		n.t.Errorf("after SIGTERM: %v", err)
	}
}

func (n *node) calls() string {
	data, _ := os.ReadFile(filepath.Join(n.stubDir, "calls.log"))
	return string(data)
}

// doctor says whether ward doctor passes on this node (it depends on the
// machine the test runs on), and so what an install ends with.
func (n *node) doctor() (passes bool, done string) {
	if exec.Command(n.ward, "doctor", "--root", n.root, "--path", n.root+"/usr/sbin").Run() == nil {
		return true, "installed on node-1"
	}
	return false, "stays unlabelled and the pod unready"
}

func TestDeployLifecycle(t *testing.T) {
	n := newNode(t)
	doctorPasses, done := n.doctor()

	// First install: the drop-in is new, so containerd restarts.
	cmd, out := n.start("install", done)
	if !strings.Contains(n.calls(), "systemctl restart containerd") || !strings.Contains(n.calls(), "containerd config dump") {
		t.Errorf("first install: calls\n%s", n.calls())
	}
	if _, err := os.Stat(n.ready); (err == nil) != doctorPasses {
		t.Errorf("ready file: %v, doctor passes: %v\n%s", err, doctorPasses, out)
	}
	// A rollout: SIGTERM leaves ward installed, runs no command.
	before := n.calls()
	n.stop(cmd)
	if _, err := os.Stat(filepath.Join(n.root, install.ManifestPath)); err != nil {
		t.Errorf("SIGTERM uninstalled ward: %v", err)
	}
	if n.calls() != before {
		t.Errorf("SIGTERM ran: %s", strings.TrimPrefix(n.calls(), before))
	}
	// The new pod: nothing changed, so no containerd restart.
	before = n.calls()
	cmd, out = n.start("install", done)
	if strings.Contains(strings.TrimPrefix(n.calls(), before), "systemctl restart") || !strings.Contains(out.String(), "drop-in unchanged") {
		t.Errorf("second install restarted containerd:\n%s\n%s", n.calls(), out)
	}
	n.stop(cmd)

	// The explicit uninstall.
	cmd, _ = n.start("uninstall", "ward removed from node-1")
	n.stop(cmd)
	if _, err := os.Stat(filepath.Join(n.root, install.ManifestPath)); err == nil {
		t.Error("uninstall left the manifest")
	}
	if _, err := os.Stat(filepath.Join(n.root, install.DropInPath)); err == nil {
		t.Error("uninstall left the drop-in")
	}
	if c := n.calls(); !strings.Contains(c, "kubectl label node node-1 ward.dev/installed-") {
		t.Errorf("no unlabel:\n%s", c)
	}
	if _, err := os.Stat(n.ready); err != nil {
		t.Errorf("the cleanup pod is not ready after uninstalling: %v", err)
	}
}

// TestDeployK3s: on a k3s agent the drop-in goes to k3s's import directory
// and the unit restarted is k3s-agent, not containerd.
func TestDeployK3s(t *testing.T) {
	const dir = "/var/lib/rancher/k3s/agent/etc/containerd"
	n := newNodeWith(t, dir+"/config.toml", "version = 3\nimports = [\""+dir+"/config-v3.toml.d/*.toml\"]\n")
	n.env = []string{"ACTIVE_UNIT=k3s-agent"}
	cmd, out := n.start("install", "ward-deploy: ward")
	n.stop(cmd)
	if _, err := os.Stat(filepath.Join(n.root, dir, "config-v3.toml.d/ward.toml")); err != nil {
		t.Errorf("no drop-in in k3s's directory: %v\n%s", err, out)
	}
	if c := n.calls(); !strings.Contains(c, "systemctl restart k3s-agent") || strings.Contains(c, "restart containerd") {
		t.Errorf("calls:\n%s", c)
	}
}

// TestDeployNodePolicy: the chart's node policy (a ConfigMap the pod sees
// as a file) becomes the host's /etc/ward/policy.yaml; one that does not
// load is not written, and the pod stays unready.
func TestDeployNodePolicy(t *testing.T) {
	n := newNode(t)
	_, done := n.doctor()
	pol := filepath.Join(n.stubDir, "policy.yaml")
	good := "apiVersion: ward.dev/v1alpha1\nkind: Policy\nextends: default\nmode: audit\n"
	if err := os.WriteFile(pol, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	n.env = []string{"WARD_NODE_POLICY=" + pol}
	cmd, out := n.start("install", done)
	n.stop(cmd)
	host := filepath.Join(n.root, install.PolicyPath)
	if data, _ := os.ReadFile(host); string(data) != good {
		t.Fatalf("host policy is %q, want the ConfigMap's\n%s", data, out)
	}
	if !strings.Contains(out.String(), "node policy written") {
		t.Errorf("no word of the policy:\n%s", out)
	}

	// A policy that does not load: the host keeps the good one.
	if err := os.WriteFile(pol, []byte("apiVersion: ward.dev/v1alpha1\nkind: Policy\nextends: default\nmode: enforcing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, out = n.start("install", "keeps its policy")
	n.stop(cmd)
	if data, _ := os.ReadFile(host); string(data) != good {
		t.Errorf("a policy that does not load replaced the node's: %q", data)
	}
	if _, err := os.Stat(n.ready); err == nil {
		t.Errorf("ready with a policy that does not load:\n%s", out)
	}
}

// TestDeployHostProcess: the host's commands run in the mount namespace of
// the process the installer is told to enter, and only that namespace:
// PID 1 by default, else WARD_HOST_PID, else the PID in the host file
// WARD_HOST_PIDFILE, read at each use. A target that cannot be used stops
// the install with a message naming the setting.
func TestDeployHostProcess(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	const pidFile = "/run/containerd/containerd.pid"

	n := newNode(t)
	full := filepath.Join(n.root, pidFile)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(self+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.env = []string{"WARD_HOST_PID=1", "WARD_HOST_PIDFILE=" + pidFile}
	_, done := n.doctor()
	cmd, out := n.start("install", done)
	n.stop(cmd)
	want := "nsenter --target " + self + " --mount -- systemctl restart containerd"
	if c := n.calls(); !strings.Contains(c, want) {
		t.Errorf("calls, want %q:\n%s\n%s", want, c, out)
	}
	if c := n.calls(); strings.Contains(c, "--net") || strings.Contains(c, "--ipc") || strings.Contains(c, "--uts") || strings.Contains(c, "--pid") {
		t.Errorf("entered more than the mount namespace:\n%s", c)
	}

	for name, c := range map[string]struct {
		env  []string
		want string
	}{
		"missing pid file": {[]string{"WARD_HOST_PIDFILE=/run/nothing.pid"}, "WARD_HOST_PIDFILE /run/nothing.pid: cannot read it on the host"},
		"not a pid":        {[]string{"WARD_HOST_PID=init"}, `WARD_HOST_PID: "init" is not a process id`},
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t)
			n.env = c.env
			cmd, out := n.start("install", c.want)
			if err := cmd.Wait(); err == nil {
				t.Errorf("the installer went on with %v:\n%s", c.env, out)
			}
			if strings.Contains(n.calls(), "nsenter") {
				t.Errorf("nsenter ran:\n%s", n.calls())
			}
			if _, err := os.Stat(n.ready); err == nil {
				t.Errorf("ready:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(n.root, install.ManifestPath)); err == nil || !strings.Contains(out.String(), "nothing changed on node-1") {
				t.Errorf("ward was installed, or the log does not say it was not:\n%s", out)
			}
		})
	}

	// The default, PID 1: entered where it can be; where it cannot (this
	// VM's PID 1 is an agent whose namespaces root cannot open), the
	// message says what to set.
	n = newNode(t)
	n.env = []string{"WARD_HOST_PID="}
	if _, err := os.Stat("/proc/1/ns/mnt"); err != nil {
		cmd, out := n.start("install", "mount namespace cannot be entered")
		if err := cmd.Wait(); err == nil || !strings.Contains(out.String(), "installer.hostProcess") {
			t.Errorf("PID 1 cannot be entered here (%v), the installer said:\n%s", err, out)
		}
		t.Logf("PID 1 cannot be entered on this machine; the installer said:\n%s", out)
		return
	}
	cmd, _ = n.start("install", done)
	n.stop(cmd)
	if c := n.calls(); !strings.Contains(c, "nsenter --target 1 --mount -- systemctl restart containerd") {
		t.Errorf("default target, calls:\n%s", c)
	}
}
