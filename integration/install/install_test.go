// Package install_test runs `ward install` with the built binaries against
// a temporary root, then has a real containerd load the drop-in it wrote
// (through containerd's own imports) and run pods with the handlers it
// registered.
package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/install"
)

func ward(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(harness.WardBin(t, "ward"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ward %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// status reads a /proc status file inside a container.
func status(t *testing.T, c *harness.Containerd, id, file string) map[string]string {
	t.Helper()
	out, err := c.Exec(id, "cat", file)
	if err != nil {
		t.Fatalf("reading %s in %s: %v", file, id, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestInstalledHandlersRunPods(t *testing.T) {
	harness.Require(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		t.Fatalf("runsc not on PATH (integration/install-deps.sh): %v", err)
	}
	// The node's root lives in containerd's instance directory, whose
	// cleanup unmounts what runsc leaves under its state root.
	dir := harness.NewDir(t)
	root := filepath.Join(dir, "node")
	// The runtimes are not under the temp root, so they are named; the
	// search under a root is covered by the unit tests.
	args := []string{"install", "--root", root, "--from", filepath.Dir(harness.WardBin(t, "ward")), "--runc", runc, "--runsc", runsc}
	out := ward(t, args...)
	if !strings.Contains(out, "containerd handlers: ward, ward-gvisor") {
		t.Fatalf("install did not register ward and ward-gvisor:\n%s", out)
	}
	for _, l := range strings.Split(ward(t, args...), "\n") {
		if strings.HasPrefix(l, "create") || strings.HasPrefix(l, "replace") || strings.HasPrefix(l, "backup") {
			t.Errorf("second install changed something: %s", l)
		}
	}

	// The files name host paths (/etc/ward, /usr/local/bin, /run/ward, /var/lib/ward...),
	// which on this machine are the real ones. Point them below the temp
	// root, as if it were the node's /, keeping the originals to put back
	// before uninstalling.
	rewrite := strings.NewReplacer(
		"/usr/local/bin/", root+"/usr/local/bin/",
		"/etc/ward/", root+"/etc/ward/",
		"/var/log/ward/", root+"/var/log/ward/",
		": /var/lib/ward/userns\n", ": "+root+"/var/lib/ward/userns\n",
		": /etc/subuid\n", ": "+root+"/etc/subuid\n",
		": /etc/subgid\n", ": "+root+"/etc/subgid\n",
		install.RuncRoot, root+install.RuncRoot,
	)
	originals := map[string][]byte{}
	configs, _ := filepath.Glob(filepath.Join(root, "etc/ward/*.yaml"))
	for _, p := range append(configs, filepath.Join(root, install.DropInPath)) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		originals[p] = data
		text := rewrite.Replace(string(data))
		if p == filepath.Join(root, install.NodeConfigPath) {
			// The default state directory is the node's /run/ward, where
			// the shared eBPF sensor's locks are: keep the test's apart.
			text += "stateDir: " + filepath.Join(root, install.StateDir) + "\n"
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// containerd itself reads the drop-in; WARD_CONFIG points the shims at
	// the installed node configuration (on a node it is at its default path).
	c := harness.StartContainerd(t, harness.Config{Dir: dir, Env: []string{"WARD_CONFIG=" + filepath.Join(root, install.NodeConfigPath)}})
	c.Import(filepath.Join(root, install.DropInDir, "*.toml"))

	p, err := c.RunPod(harness.Pod{Name: "installed-ward", Handler: "ward"})
	if err != nil {
		t.Fatalf("pod on the ward handler: %v\n%s", err, c.LogTail(40))
	}
	for _, file := range []string{"/proc/1/status", "/proc/self/status"} {
		if st := status(t, c, p.ContainerID, file); st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
			t.Errorf("ward handler, %s: NoNewPrivs=%q Seccomp=%q, want 1 and 2", file, st["NoNewPrivs"], st["Seccomp"])
		}
	}

	// An ordinary pod, which ward's default policy would harden on runc,
	// runs in gVisor on the ward-gvisor handler.
	g, err := c.RunPod(harness.Pod{Name: "installed-gvisor", Handler: "ward-gvisor"})
	if err != nil {
		t.Fatalf("pod on the ward-gvisor handler: %v\n%s", err, c.LogTail(40))
	}
	if out, err := c.Exec(g.ContainerID, "dmesg"); err != nil || !strings.Contains(out, "gVisor") {
		t.Errorf("ward-gvisor: dmesg does not show gVisor's kernel (%v):\n%s", err, out)
	}
	// The decision log names the handler's own rule, from its own configuration.
	logData, err := os.ReadFile(filepath.Join(root, install.DecisionLog))
	if err != nil || !strings.Contains(string(logData), "sandbox-everything-gvisor") {
		t.Errorf("ward-gvisor's decision log does not name its rule (%v):\n%s", err, logData)
	}
	// A privileged pod is still refused there: rejection outranks the
	// handler's sandbox rule.
	if _, err := c.RunPod(harness.Pod{Name: "installed-gvisor-priv", Handler: "ward-gvisor", Privileged: true}); err == nil ||
		!strings.Contains(err.Error(), "reject-host-takeover") {
		t.Errorf("privileged pod on ward-gvisor: %v, want a rejection by reject-host-takeover", err)
	}

	for _, id := range []string{p.SandboxID, g.SandboxID} {
		if err := c.RemovePod(id); err != nil {
			t.Errorf("removing pod %s: %v", id, err)
		}
	}
	for path, data := range originals {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out = ward(t, "uninstall", "--root", root)
	if strings.Contains(out, string(install.Leave)) {
		t.Errorf("uninstall left files:\n%s", out)
	}
	// What remains is the decision logs (the operator's) and the shims'
	// runtime state; no file install wrote.
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel := strings.TrimPrefix(path, root)
		if strings.HasPrefix(rel, "/etc/") || strings.HasPrefix(rel, "/usr/") || rel == install.ManifestPath || rel == "/var/log/ward/README" {
			t.Errorf("left after uninstall: %s", rel)
		}
		return nil
	})
}
