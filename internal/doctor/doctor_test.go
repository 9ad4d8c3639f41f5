package doctor

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/sensor"
)

type fakeKernel struct {
	abi    int
	abiErr error
	idmap  error
	cgroup int
	lsm    error
	sensor error
	pins   []sensor.Pinned
}

func (k fakeKernel) LandlockABI() (int, error)               { return k.abi, k.abiErr }
func (k fakeKernel) IdmapSupported(string) error             { return k.idmap }
func (k fakeKernel) CgroupVersion() (int, error)             { return k.cgroup, nil }
func (k fakeKernel) Sensor() (error, error)                  { return k.lsm, k.sensor }
func (k fakeKernel) PinnedSensors() ([]sensor.Pinned, error) { return k.pins, nil }
func writeFile(t *testing.T, root, p, data string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeBinary writes an executable that prints a version, as the real
// runtimes do for --version.
func fakeBinary(t *testing.T, dir, name, output string) {
	t.Helper()
	writeFile(t, dir, name, "#!/bin/sh\ncat <<'EOF'\n"+output+"\nEOF\n")
}

func byID(results []Result, id string) []Result {
	var out []Result
	for _, r := range results {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

func TestGoodNode(t *testing.T) {
	root, bin := t.TempDir(), t.TempDir()
	writeFile(t, root, "/proc/sys/user/max_user_namespaces", "4096\n")
	writeFile(t, root, "/proc/sys/kernel/seccomp/actions_avail", "kill_process errno trace log allow\n")
	writeFile(t, root, "/etc/containerd/config.toml", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n")
	writeFile(t, root, "/etc/containerd/conf.d/ward.toml", `version = 3
[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "ward"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ward]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "/usr/local/bin/containerd-shim-ward-v2"
`)
	writeFile(t, root, "/var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\nseccompDefault: true\n")
	writeFile(t, root, "/etc/subuid", "alice:100000:65536\nward:2147483648:67108864\n")
	writeFile(t, root, "/etc/subgid", "alice:100000:65536\nward:2147483648:67108864\n")
	if err := os.MkdirAll(filepath.Join(root, "/var/lib/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	fakeBinary(t, bin, "runc", "runc version 1.4.4\nspec: 1.3.0")
	fakeBinary(t, bin, "runsc", "runsc version release-20260905.0\nspec: 1.1.0")
	fakeBinary(t, bin, "containerd-shim-kata-v2", "Kata Containers containerd shim 3.20.0")
	results := Run(&Node{Root: root, Path: bin, Kernel: fakeKernel{abi: 7, cgroup: 2}})
	for _, r := range results {
		if r.Status != Pass {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Detail)
		}
	}
	if Failed(results) {
		t.Error("Failed() on a good node")
	}
	if got := byID(results, "kernel.idmap"); len(got) != 2 || got[0].Title != "idmapped mounts on /var/lib/containerd" || got[1].Title != "idmapped mounts on /var/lib/kubelet" {
		t.Errorf("idmap results %v", got)
	}
}

func TestBadNode(t *testing.T) {
	root, bin := t.TempDir(), t.TempDir()
	writeFile(t, root, "/proc/sys/user/max_user_namespaces", "0\n")
	writeFile(t, root, "/etc/containerd/config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n")
	writeFile(t, root, "/var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\n")
	fakeBinary(t, bin, "runc", "runc version 1.1.5\ncommit: v1.1.5")
	sock := filepath.Join(root, "/run/docker.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	results := Run(&Node{Root: root, Path: bin, Kernel: fakeKernel{abiErr: errors.New("ENOSYS"), idmap: errors.New("EINVAL"), cgroup: 1}})
	want := map[string]Status{
		"kernel.landlock":        Warn,
		"kernel.userns":          Fail,
		"userns.pool":            Fail,
		"kernel.seccomp":         Fail,
		"kernel.idmap":           Warn,
		"kernel.cgroup":          Warn,
		"runtime.runc":           Fail,
		"runtime.runsc":          Warn,
		"runtime.kata":           Warn,
		"containerd.ward":        Fail,
		"containerd.default":     Warn,
		"kubelet.seccompDefault": Warn,
		"socket.permissions":     Fail,
	}
	for id, status := range want {
		got := byID(results, id)
		if len(got) == 0 || got[0].Status != status {
			t.Errorf("%s = %v, want %s", id, got, status)
		}
	}
	runc := byID(results, "runtime.runc")[0]
	if !strings.Contains(runc.Ref, "CVE-2024-21626") {
		t.Errorf("runc 1.1.5 result does not cite Leaky Vessels: %+v", runc)
	}
	if !Failed(results) {
		t.Error("Failed() is false with FAILs")
	}
}

func TestRuncVersions(t *testing.T) {
	tests := []struct {
		v      string
		status Status
		ref    string
	}{
		{"runc version 1.1.5", Fail, "CVE-2024-21626"},
		{"runc version 1.1.12", Fail, "CVE-2025-31133"},
		{"runc version 1.2.7", Fail, "CVE-2025-31133"},
		{"runc version 1.2.8", Pass, ""},
		{"runc version 1.3.2", Fail, "CVE-2025-52565"},
		{"runc version 1.3.3", Pass, ""},
		{"runc version 1.4.4", Pass, ""},
	}
	for _, tt := range tests {
		v, ok := parseVersion(tt.v)
		if !ok {
			t.Fatalf("cannot parse %q", tt.v)
		}
		status, _, ref := runcVerdict(v)
		if status != tt.status || !strings.Contains(ref, tt.ref) {
			t.Errorf("%s: %s %q, want %s %q", tt.v, status, ref, tt.status, tt.ref)
		}
	}
}

// TestHostKernel probes this machine's kernel. ward's CI machines run a
// kernel with Landlock and idmapped mounts, so a failure here is a real
// regression, not a reason to skip.
func TestHostKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the idmap probe needs root")
	}
	k := HostKernel{}
	abi, err := k.LandlockABI()
	if err != nil || abi < 1 {
		t.Errorf("Landlock ABI %d, %v", abi, err)
	}
	if err := k.IdmapSupported(t.TempDir()); err != nil {
		t.Errorf("idmap probe on a temp dir: %v", err)
	}
	if v, err := k.CgroupVersion(); err != nil || (v != 1 && v != 2) {
		t.Errorf("cgroup version %d, %v", v, err)
	}
	// The sensor needs tracefs mounted, which a node process does and a
	// probe does not: only a kernel that cannot load it fails here.
	if _, err := k.Sensor(); err != nil && !strings.Contains(err.Error(), "tracefs is not mounted") {
		t.Errorf("eBPF sensor on this kernel: %v", err)
	}
}

func TestSensorCheck(t *testing.T) {
	n := &Node{Kernel: fakeKernel{lsm: errors.New("EPERM")}}
	if r := checkSensor(n)[0]; r.Status != Pass || !strings.Contains(r.Detail, "cannot deny") {
		t.Errorf("sensor without BPF-LSM: %+v", r)
	}
	n.Kernel = fakeKernel{sensor: errors.New("BTF missing")}
	if r := checkSensor(n)[0]; r.Status != Warn || !strings.Contains(r.Detail, "supervisor still works") {
		t.Errorf("no sensor: %+v", r)
	}
}

// TestNodeConfigCheck: a node configuration whose policy does not load, or
// names a backend the node lacks, fails the check with the reason.
func TestNodeConfigCheck(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := &Node{Root: root}
	if r := checkNodeConfig(n)[0]; r.Status != Pass {
		t.Errorf("no configuration: %+v", r)
	}
	write("/etc/ward/ward.yaml", "policy: /etc/ward/policy.yaml\n")
	write("/etc/ward/policy.yaml", "mode: bogus\n")
	if r := checkNodeConfig(n)[0]; r.Status != Fail || !strings.Contains(r.Detail, "last good policy") {
		t.Errorf("broken policy: %+v", r)
	}
	write("/etc/ward/ward.yaml", "polcy: /etc/ward/policy.yaml\n")
	if r := checkNodeConfig(n)[0]; r.Status != Fail || !strings.Contains(r.Detail, "polcy") {
		t.Errorf("misspelt key: %+v", r)
	}
}

// TestK3sHandler: on a k3s node the ward handler is looked for in k3s's
// containerd configuration and its imports, not /etc/containerd.
func TestK3sHandler(t *testing.T) {
	root := t.TempDir()
	const dir = "/var/lib/rancher/k3s/agent/etc/containerd"
	writeFile(t, root, dir+"/config.toml", "version = 3\nimports = [\""+dir+"/config-v3.toml.d/*.toml\"]\n")
	writeFile(t, root, dir+"/config-v3.toml.d/ward.toml", `version = 3
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ward]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "/usr/local/bin/containerd-shim-ward-v2"
`)
	results := Run(&Node{Root: root, Path: t.TempDir(), Kernel: fakeKernel{abi: 7, cgroup: 2}})
	if got := byID(results, "containerd.ward"); len(got) == 0 || got[0].Status != Pass {
		t.Errorf("containerd.ward = %v", got)
	}
}

func TestSensorPinsCheck(t *testing.T) {
	n := &Node{Kernel: fakeKernel{}}
	if r := checkSensorPins(n)[0]; r.Status != Pass || !strings.Contains(r.Detail, "none pinned") {
		t.Errorf("no pins: %+v", r)
	}
	cur := sensor.Pinned{Dir: "/sys/fs/bpf/ward/a/" + sensor.Digest(), Digest: sensor.Digest(), Current: true, StateDir: "/var/lib/ward"}
	n.Kernel = fakeKernel{pins: []sensor.Pinned{cur}}
	if r := checkSensorPins(n)[0]; r.Status != Pass || !strings.Contains(r.Detail, cur.Dir) {
		t.Errorf("this build's sensor: %+v", r)
	}
	old := sensor.Pinned{Dir: "/sys/fs/bpf/ward/a/0123", Digest: "0123", StateDir: "/var/lib/ward"}
	gone := sensor.Pinned{Dir: "/sys/fs/bpf/ward/b/" + sensor.Digest(), Digest: sensor.Digest(), Current: true, Orphan: true, StateDir: "/tmp/x"}
	n.Kernel = fakeKernel{pins: []sensor.Pinned{cur, old, gone}}
	r := checkSensorPins(n)[0]
	if r.Status != Warn || !strings.Contains(r.Detail, old.Dir) || !strings.Contains(r.Detail, "/tmp/x is gone") || !strings.Contains(r.Detail, "ward uninstall") {
		t.Errorf("stale pins: %+v", r)
	}
}
