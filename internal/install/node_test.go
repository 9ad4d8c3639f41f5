package install

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// testNode lays out a fake node under a temp root: built binaries in a
// separate directory, and the runtimes named in bins as executables under
// the root.
func testNode(t *testing.T, bins ...string) Node {
	t.Helper()
	root, from := t.TempDir(), t.TempDir()
	for _, b := range Binaries() {
		if err := os.WriteFile(filepath.Join(from, b), []byte("#!/bin/sh\n# "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bins {
		writeTestFile(t, filepath.Join(root, b), "#!/bin/sh\n", 0o755)
	}
	return Node{Root: root, BinDir: "/usr/local/bin", From: from, Path: DefaultSearchPath()}
}

func writeTestFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func fileData(t *testing.T, np *NodePlan, path string) []byte {
	t.Helper()
	for _, f := range np.Files {
		if f.Path == path {
			return f.Data
		}
	}
	t.Fatalf("no %s in %v", path, paths(np.Files))
	return nil
}

// dropIn decodes the drop-in's runtime tables as containerd would see them.
func dropIn(t *testing.T, np *NodePlan) map[string]map[string]any {
	t.Helper()
	var doc struct {
		Version int64 `toml:"version"`
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]map[string]any `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(fileData(t, np, DropInPath), &doc); err != nil {
		t.Fatalf("drop-in does not parse: %v", err)
	}
	if doc.Version != 3 {
		t.Errorf("drop-in version %d, want 3", doc.Version)
	}
	return doc.Plugins["io.containerd.cri.v1.runtime"].Containerd.Runtimes
}

func TestBuildWithRuncOnly(t *testing.T) {
	n := testNode(t, "/usr/sbin/runc")
	np, err := n.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/usr/local/bin/ward", "/usr/local/bin/ward-runtime", "/usr/local/bin/containerd-shim-ward-v2", "/usr/local/bin/ward-init",
		PolicyPath, "/var/log/ward/README", NodeConfigPath, SubUIDPath, SubGIDPath, DropInPath,
	}
	if got := paths(np.Files); !slices.Equal(got, want) {
		t.Fatalf("files %v\nwant %v", got, want)
	}
	rts := dropIn(t, np)
	if len(rts) != 1 || rts["ward"] == nil {
		t.Fatalf("handlers %v, want only ward", rts)
	}
	w := rts["ward"]
	opts, _ := w["options"].(map[string]any)
	if w["runtime_type"] != "io.containerd.runc.v2" || w["runtime_path"] != "/usr/local/bin/containerd-shim-ward-v2" ||
		opts["BinaryName"] != "/usr/sbin/runc" || opts["Root"] != RuncRoot || opts["WardConfig"] != nil {
		t.Errorf("ward handler: %v", w)
	}
	if a, _ := w["pod_annotations"].([]any); len(a) != 1 || a[0] != "ward.dev/*" {
		t.Errorf("pod_annotations %v", w["pod_annotations"])
	}
	if !slices.Equal(fileData(t, np, PolicyPath), policy.DefaultYAML()) {
		t.Error("policy.yaml is not the embedded default")
	}
	for _, f := range np.Files {
		if f.Keep != (f.Path == PolicyPath) {
			t.Errorf("%s: Keep=%v", f.Path, f.Keep)
		}
	}
	// No containerd config on this node: the operator is told to create one.
	if len(np.Advice) != 1 || !strings.Contains(np.Advice[0], `imports = ["/etc/containerd/conf.d/*.toml"]`) {
		t.Errorf("advice %q", np.Advice)
	}
}

func TestBuildWithoutRuncFails(t *testing.T) {
	n := testNode(t)
	if _, err := n.Build(); err == nil || !strings.Contains(err.Error(), "runc") {
		t.Fatalf("err %v, want runc not found", err)
	}
}

func TestBuildSandboxHandlers(t *testing.T) {
	n := testNode(t, "/usr/bin/runc", "/usr/local/bin/runsc", "/opt/kata/bin/containerd-shim-kata-v2")
	n.Path = append(n.Path, "/opt/kata/bin")
	np, err := n.Build()
	if err != nil {
		t.Fatal(err)
	}
	rts := dropIn(t, np)
	for _, b := range []policy.Backend{policy.GVisor, policy.Kata} {
		name := "ward-" + string(b)
		h := rts[name]
		opts, _ := h["options"].(map[string]any)
		cfgPath := "/etc/ward/ward-" + string(b) + ".yaml"
		if h["runtime_type"] != "io.containerd.ward.v2" || h["runtime_path"] != "/usr/local/bin/containerd-shim-ward-v2" ||
			opts["WardConfig"] != cfgPath || opts["BinaryName"] != "/usr/bin/runc" {
			t.Errorf("%s: %v", name, h)
		}
		// The node configuration the handler names, read as the shim reads it.
		sc, err := nodeconfig.Parse(fileData(t, np, cfgPath), cfgPath)
		if err != nil {
			t.Fatalf("%s: %v", cfgPath, err)
		}
		polPath := "/etc/ward/policy-" + string(b) + ".yaml"
		if sc.Policy != polPath || sc.DecisionLog != DecisionLog {
			t.Errorf("%s: %+v", cfgPath, sc)
		}
		p, err := policy.Parse(fileData(t, np, polPath), polPath)
		if err != nil {
			t.Fatalf("generated policy: %v", err)
		}
		assertRoutes(t, p, b)
	}
	main, err := nodeconfig.Parse(fileData(t, np, NodeConfigPath), NodeConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := main.Table()
	if tb["gvisor"].Binary != "/usr/local/bin/runsc" || tb["kata"].Binary != "/opt/kata/bin/containerd-shim-kata-v2" ||
		tb["runc"].Binary != "/usr/bin/runc" || main.LogPath() != DecisionLog || main.Policy != PolicyPath {
		t.Errorf("ward.yaml: %+v", main)
	}
}

// assertRoutes checks that p sends an ordinary pod (sandbox and app
// container, as CRI sends them) and a plain ctr container to b, and still
// rejects a privileged pod.
func assertRoutes(t *testing.T, p *policy.Policy, b policy.Backend) {
	t.Helper()
	ev := policy.NewEvaluator(p)
	for _, spec := range []string{"cri-ordinary/sandbox.json", "cri-ordinary/container.json", "ctr-run/config.json"} {
		bd, err := bundle.Load(filepath.Join("../../testdata/corpus", spec), 0)
		if err != nil {
			t.Fatal(err)
		}
		d := ev.Evaluate(policy.Input{Spec: bd.Spec, Workload: bd.Workload})
		if d.Action != policy.Sandbox || d.Backend != b {
			t.Errorf("%s policy, %s (namespace %q): %s %s by %q", b, spec, bd.Workload.Namespace, d.Action, d.Backend, d.Rule)
		}
	}
	bd, err := bundle.Load("../../testdata/corpus/cri-privileged/container.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := ev.Evaluate(policy.Input{Spec: bd.Spec, Workload: bd.Workload}); d.Action != policy.Reject {
		t.Errorf("%s policy lets a privileged container run: %s %s", b, d.Action, d.Backend)
	}
}

func TestContainerdConfigAdvice(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		advice       string // substring; "" for none
		systemd      bool
	}{
		{"covered", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", "", false},
		{"relative import", "version = 3\nimports = [\"conf.d/*.toml\"]\n", "", false},
		{"exact file", "version = 3\nimports = [\"/etc/containerd/conf.d/ward.toml\"]\n", "", false},
		{"no imports", "version = 3\n[plugins]\n", "add this line at the top of the file", false},
		{"other imports", "version = 2\nimports = [\"/etc/other/*.toml\"]\n", "to its existing imports list", false},
		{"systemd v3", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n" +
			"[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n", "", true},
		{"systemd v2", "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n" +
			"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testNode(t, "/usr/sbin/runc")
			n.ContainerdVersion = "2.4"
			writeTestFile(t, filepath.Join(n.Root, ContainerdConf), tc.config, 0o644)
			np, err := n.Build()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(np.Advice, "\n")
			if tc.advice == "" && got != "" || !strings.Contains(got, tc.advice) {
				t.Errorf("advice %q, want %q", got, tc.advice)
			}
			opts, _ := dropIn(t, np)["ward"]["options"].(map[string]any)
			if (opts["SystemdCgroup"] == true) != tc.systemd {
				t.Errorf("SystemdCgroup %v, want %v", opts["SystemdCgroup"], tc.systemd)
			}
			if data, _ := os.ReadFile(filepath.Join(n.Root, ContainerdConf)); string(data) != tc.config {
				t.Error("containerd's config.toml was changed")
			}
		})
	}
}

// The whole node: install, install again, uninstall, against a temp root
// that already holds an operator's drop-in of the same name.
func TestNodeInstallUninstall(t *testing.T) {
	n := testNode(t, "/usr/sbin/runc", "/usr/local/bin/runsc")
	writeTestFile(t, filepath.Join(n.Root, DropInPath), "# the operator's\n", 0o644)
	np, err := n.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := &Installer{Root: n.Root}
	plan, err := in.Plan(np.Files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan {
		want := Create
		if c.Path == DropInPath {
			want = Backup
		}
		if c.Op != want {
			t.Errorf("plan: %v, want %s", c, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(n.Root, "etc")); len(entries) != 1 {
		t.Fatalf("Plan wrote under the root: %v", entries)
	}
	if _, err := in.Apply(np.Files); err != nil {
		t.Fatal(err)
	}
	for _, f := range np.Files {
		data, err := os.ReadFile(filepath.Join(n.Root, f.Path))
		if err != nil || string(data) != string(f.Data) {
			t.Errorf("%s not written: %v", f.Path, err)
		}
	}
	// A second run, rebuilt from the node as it now is, changes nothing.
	np2, err := n.Build()
	if err != nil {
		t.Fatal(err)
	}
	again, err := in.Apply(np2.Files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Op != Skip {
			t.Errorf("second install: %v", c)
		}
	}
	if _, err := in.Uninstall(false); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(n.Root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, strings.TrimPrefix(p, n.Root))
		}
		return nil
	})
	// What was there before: the runtimes and the operator's drop-in.
	want := []string{DropInPath, "/usr/local/bin/runsc", "/usr/sbin/runc"}
	if !slices.Equal(left, want) {
		t.Errorf("after uninstall: %v, want %v", left, want)
	}
	if data, _ := os.ReadFile(filepath.Join(n.Root, DropInPath)); string(data) != "# the operator's\n" {
		t.Errorf("the operator's drop-in was not restored: %q", data)
	}
}

func TestSandboxPolicyRejectsUnknownBackend(t *testing.T) {
	if _, err := SandboxPolicy("firecracker"); err == nil {
		t.Fatal("a policy for an unknown backend was built")
	}
}

// The default policy's user namespaces need a "ward" pool: install adds
// one to both files, clear of every other entry, and keeps the rest of the
// files; an operator's own "ward" entry is left alone.
func TestBuildSubIDPool(t *testing.T) {
	n := testNode(t, "/usr/sbin/runc")
	writeTestFile(t, filepath.Join(n.Root, SubUIDPath), "alice:100000:65536\nkubelet:2147483648:655360", 0o644)
	writeTestFile(t, filepath.Join(n.Root, SubGIDPath), "alice:100000:65536\n", 0o600)
	np, err := n.Build()
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := string(fileData(t, np, SubUIDPath)), string(fileData(t, np, SubGIDPath))
	if !strings.HasPrefix(uid, "alice:100000:65536\nkubelet:2147483648:655360\nward:") || !strings.HasPrefix(gid, "alice:100000:65536\nward:") {
		t.Fatalf("subuid %q subgid %q: existing entries not kept", uid, gid)
	}
	for _, f := range np.Files {
		if f.Path == SubGIDPath && f.Mode != 0o600 {
			t.Errorf("subgid mode %v, want the file's own 0600", f.Mode)
		}
	}
	pool := func(data string) userns.Range {
		es, err := userns.ParseSubID(strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		p, err := userns.Pool(es, PoolUser)
		if err != nil || len(p) != 1 {
			t.Fatalf("pool in %q: %v %v", data, p, err)
		}
		return p[0]
	}
	if pu, pg := pool(uid), pool(gid); pu != pg || pu.Size != userns.PoolBlocks*userns.BlockSize {
		t.Errorf("pools %v and %v", pu, pg)
	}
	// The pool must also be clear of the kubelet's range in subuid when
	// checked against subgid (userns.Pool checks one file at a time).
	if k := (userns.Range{Start: 2147483648, Size: 655360}); k.Overlaps(pool(gid)) {
		t.Errorf("pool %v overlaps the kubelet's %v", pool(gid), k)
	}

	writeTestFile(t, filepath.Join(n.Root, SubGIDPath), "ward:300000000:65536\n", 0o644)
	np, err = n.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(np.Files); slices.Contains(got, SubUIDPath) || slices.Contains(got, SubGIDPath) {
		t.Errorf("an operator's ward entry was replaced: %v", got)
	}
}

// TestUninstallNeverAdvisesDeletingSubIDFiles: /etc/subuid changed after
// install (useradd added a user) is left, and the advice is to remove
// ward's line, not the file (it used to say "remove it yourself").
func TestUninstallNeverAdvisesDeletingSubIDFiles(t *testing.T) {
	n := testNode(t, "/usr/sbin/runc")
	np, err := n.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := &Installer{Root: n.Root}
	if _, err := in.Apply(np.Files); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(n.Root, SubUIDPath)
	f, err := os.OpenFile(sub, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("alice:100000:65536\n")
	f.Close()
	undo, err := in.Uninstall(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sub); err != nil {
		t.Fatalf("%s: %v", SubUIDPath, err)
	}
	for _, c := range undo {
		if c.Path != SubUIDPath {
			continue
		}
		if c.Op != Leave || strings.Contains(c.Detail, "remove it yourself") || !strings.Contains(c.Detail, "never delete it") {
			t.Errorf("%v", c)
		}
		return
	}
	t.Errorf("uninstall said nothing of %s: %v", SubUIDPath, undo)
}

// TestContainerdConfigVersions: ward's version 3 drop-in over a root file
// containerd 1.x could be reading is refused, not written silently (a
// containerd 1.x would then refuse to start); containerd 2.x migrates the
// root file and merges the drop-in, so that is accepted.
func TestContainerdConfigVersions(t *testing.T) {
	const imports = "imports = [\"/etc/containerd/conf.d/*.toml\"]\n"
	for _, tc := range []struct {
		name, config, version, err string
	}{
		{"v3 root, version unknown", "version = 3\n" + imports, "", ""},
		{"v2 root, containerd 2.4", "version = 2\n" + imports, "2.4.2", ""},
		{"no version, containerd 2.x", imports, "2.x", ""},
		{"v2 root, version unknown", "version = 2\n" + imports, "", "config version 2 (containerd 1.x's layout) and containerd's own version is unknown"},
		{"no version, version unknown", imports, "", "config version 1"},
		{"containerd 1.7", "version = 2\n" + imports, "1.7.27", "containerd 1.7 (--containerd-version) is 1.x"},
		{"containerd 1.7 without a file", "", "1.7", "is 1.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testNode(t, "/usr/sbin/runc")
			n.ContainerdVersion = tc.version
			if tc.config != "" {
				writeTestFile(t, filepath.Join(n.Root, ContainerdConf), tc.config, 0o644)
			}
			_, err := n.Build()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Build: %v, want %q", err, tc.err)
			}
		})
	}
}

// TestContainerdVersionFromBinary reads the version from a real
// containerd's build information, where one is installed.
func TestContainerdVersionFromBinary(t *testing.T) {
	for bin, major := range map[string]int{"/opt/ward-deps/bin/containerd": 2, "/usr/bin/containerd": 1} {
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		n := Node{Root: "/", Path: []string{filepath.Dir(bin)}}
		if v := n.containerdVersion(); v.Major != major || v.From != bin {
			t.Errorf("%s: %+v, want major %d", bin, v, major)
		}
	}
	n := testNode(t, "/usr/bin/containerd") // a shell script: not a Go binary
	if v := n.containerdVersion(); v.Major != 0 {
		t.Errorf("a script: %+v", v)
	}
}

// TestLayouts: k3s, RKE2 and k0s keep containerd's configuration elsewhere;
// the drop-in goes where each one's root file imports from, and the advice
// is the distribution's own.
func TestLayouts(t *testing.T) {
	for _, tc := range []struct {
		name, config, body, dropIn, advice string
	}{
		{"k3s with imports", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
			"version = 3\nimports = [\"/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/*.toml\"]\n",
			"/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/ward.toml", ""},
		{"older k3s", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml", "version = 3\n",
			"/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/ward.toml", "config-v3.toml.tmpl"},
		{"rke2", "/var/lib/rancher/rke2/agent/etc/containerd/config.toml",
			"version = 3\nimports = [\"/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.d/*.toml\"]\n",
			"/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.d/ward.toml", ""},
		{"k0s", "/etc/k0s/containerd.toml", "version = 3\nimports = [\"/etc/k0s/containerd.d/*.toml\"]\n", "/etc/k0s/containerd.d/ward.toml", ""},
		{"containerd", ContainerdConf, "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", DropInPath, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testNode(t, "/usr/sbin/runc")
			writeTestFile(t, filepath.Join(n.Root, tc.config), tc.body, 0o644)
			np, err := n.Build()
			if err != nil {
				t.Fatal(err)
			}
			if np.Layout.DropIn() != tc.dropIn || np.Layout.Config != tc.config {
				t.Errorf("layout %+v", np.Layout)
			}
			fileData(t, np, tc.dropIn)
			got := strings.Join(np.Advice, "\n")
			if tc.advice == "" && got != "" || !strings.Contains(got, tc.advice) {
				t.Errorf("advice %q, want %q", got, tc.advice)
			}
		})
	}
}
