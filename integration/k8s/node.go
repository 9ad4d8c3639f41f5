package k8s

import (
	"context"
	"fmt"
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

// The node's root is a directory (Cluster.Node), not this machine's /:
// `ward install --root` writes into it (by the operator's hand or from
// the installer DaemonSet's pod, which mounts it as its hostPath), and the
// files it writes name the node's absolute paths (/usr/local/bin/...,
// /etc/ward/..., /var/lib/kubelet). The view is what those files mean on
// this machine: a translated copy of ward's containerd drop-in and
// configurations, under Cluster.Dir/view, which the test's containerd
// imports. ward's own files in the node root are never edited, so
// `ward install` run twice changes nothing and `ward uninstall` finds
// them as it wrote them.

// nodeRuntimes are the host binaries linked into the node root's
// /opt/ward-deps/bin, where `ward install --path /opt/ward-deps/bin` finds
// them, as it would find a node's packaged runc in /usr/sbin.
var nodeRuntimes = []string{"runc", "runsc", "containerd"}

// NodeSearchPath is the --path ward install searches below the node root.
const NodeSearchPath = "/opt/ward-deps/bin"

// UntrustedNamespaces is the operator's setting for untrusted.namespaces in
// the node's policy: every pod in a namespace matching it runs in gVisor.
const UntrustedNamespaces = "ward-untrusted-*"

func (c *Cluster) makeNode() error {
	if err := os.MkdirAll(c.WorkloadDir(), 0o755); err != nil {
		return err
	}
	bin := filepath.Join(c.Node, NodeSearchPath)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, name := range nodeRuntimes {
		src, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("%s not on PATH (make deps): %w", name, err)
		}
		if err := linkOrCopy(src, filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	// ward doctor reads the kernel's settings under the root (/host/proc
	// in the installer's pod): the symlinks resolve to the pod's own
	// /proc and /sys, which with hostPID show the host's.
	for _, d := range []string{"proc", "sys"} {
		if err := os.Symlink("/"+d, filepath.Join(c.Node, d)); err != nil {
			return err
		}
	}
	// The root configuration an operator writes once (ward install says
	// so when it is missing), importing the drop-ins.
	conf := filepath.Join(c.Node, install.ContainerdConf)
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return err
	}
	return os.WriteFile(conf, []byte("version = 3\nimports = [\""+install.DropInDir+"/*.toml\"]\n"), 0o644)
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

// InstallWard runs `ward install` into the node root as an operator would
// and refreshes the view; containerd must be restarted to load it.
func (c *Cluster) InstallWard(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(harness.WardBin(t, "ward"), "install", "--root", c.Node,
		"--from", filepath.Dir(harness.WardBin(t, "ward")), "--path", NodeSearchPath).CombinedOutput()
	if err != nil {
		t.Fatalf("ward install: %v\n%s", err, out)
	}
	if err := c.translate(); err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// translate rewrites ward's files in the node root into the view.
func (c *Cluster) translate() error {
	r := strings.NewReplacer(
		"/usr/local/bin/", c.Node+"/usr/local/bin/",
		install.ConfigDir+"/", c.View+"/",
		install.LogDir+"/", c.Node+install.LogDir+"/",
		"/var/lib/ward/", c.Node+"/var/lib/ward/",
		": "+install.SubUIDPath+"\n", ": "+c.Node+install.SubUIDPath+"\n",
		": "+install.SubGIDPath+"\n", ": "+c.Node+install.SubGIDPath+"\n",
		install.RuncRoot, filepath.Join(c.Dir, "runc-ward"),
		"kubeletRoot: /var/lib/kubelet\n", "kubeletRoot: "+c.KubeletRoot+"\n",
		"/var/lib/containerd/", filepath.Join(c.Dir, "root")+"/",
		"/run/containerd/io.containerd", filepath.Join(c.Dir, "state")+"/io.containerd",
		// The operator's one edit of the policy.
		"  namespaces: []\n", "  namespaces: ["+UntrustedNamespaces+"]\n",
		// The node's directory for workloads' hostPath volumes, which the
		// operator gives to workloads: ward idmaps binds from it, so
		// container root writes there as on runc. Any other host path
		// stays unmapped under the user namespace (docs/userns.md).
		"  workloadDirs: []\n", "  workloadDirs: ["+c.WorkloadDir()+"]\n",
	)
	old, _ := filepath.Glob(filepath.Join(c.View, "*"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	files, _ := filepath.Glob(filepath.Join(c.Node, install.ConfigDir, "*.yaml"))
	files = append(files, filepath.Join(c.Node, install.DropInPath))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		s := r.Replace(string(data))
		if strings.HasPrefix(filepath.Base(p), "ward") && strings.HasSuffix(p, ".yaml") && !strings.Contains(s, "\nstateDir:") {
			// The shims' state, /run/ward on a node, is shared with
			// whatever else runs ward on this machine.
			s += "stateDir: " + filepath.Join(c.Dir, "run/ward") + "\n"
		}
		if err := os.WriteFile(filepath.Join(c.View, filepath.Base(p)), []byte(s), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ContainerdPidFile is where, on the node, the test's containerd's PID is
// kept: the installer's pod enters that process's mount namespace (the
// chart's installer.hostProcess.pidFile), as this machine's PID 1, a VM
// agent, cannot be entered.
const ContainerdPidFile = "/run/containerd/containerd.pid"

// writeContainerdPid records the running containerd's PID in the node's
// pid file; the agent rewrites it after each restart.
func (c *Cluster) writeContainerdPid() error {
	p := filepath.Join(c.Node, ContainerdPidFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(c.Containerd.Pid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// The installer DaemonSet's pod reaches the node's systemd through
// nsenter into the mount namespace of the process ContainerdPidFile names
// (this machine's), finding systemctl and containerd on its $PATH there. The stand-ins under Dir/hostbin (first on the pod's $PATH,
// absent inside its image) make the test the node's service manager:
// `systemctl restart containerd` asks the agent to refresh the view and
// restart the test's containerd, `containerd config dump` dumps its
// configuration.
func (c *Cluster) writeHostStubs() error {
	hostbin := filepath.Join(c.Dir, "hostbin")
	agent := filepath.Join(c.Dir, "agent")
	for _, d := range []string{hostbin, agent} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	req := filepath.Join(agent, "restart")
	stubs := map[string]string{
		"systemctl": `case "$1" in
is-active) for a; do [ "$a" = containerd ] && exit 0; done; exit 3 ;;
restart)
	touch ` + req + `
	i=0
	while [ -e ` + req + ` ]; do
		sleep 0.2; i=$((i+1))
		[ $i -lt 600 ] || { echo "the test's containerd was not restarted" >&2; exit 1; }
	done ;;
status) echo "containerd: the test's own, started by integration/k8s" ;;
*) echo "systemctl stand-in: $*: not supported" >&2; exit 1 ;;
esac`,
		"containerd": `exec ` + mustPath("containerd") + ` --config ` + filepath.Join(c.Dir, "config.toml") + ` "$@"`,
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(hostbin, name), []byte("#!/bin/sh\n# integration/k8s: stands in for the node's "+name+".\n"+body+"\n"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func mustPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return name
	}
	return p
}

// agent serves the stand-in systemctl's restart requests until ctx ends.
func (c *Cluster) agent(ctx context.Context) {
	req := filepath.Join(c.Dir, "agent", "restart")
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := os.Stat(req); err != nil {
			continue
		}
		if err := c.translate(); err != nil {
			c.t.Errorf("agent: %v", err)
		}
		c.Containerd.Restart()
		c.restarts.Add(1)
		if err := c.writeContainerdPid(); err != nil {
			c.t.Errorf("agent: %v", err)
		}
		os.Remove(req)
	}
}

// WorkloadDir is the node's directory for the tests' hostPath volumes,
// listed in the node policy's workloadDirs.
func (c *Cluster) WorkloadDir() string { return filepath.Join(c.Dir, "hostpath") }
