package shim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// usernsPoolStart is the test pool: 100 blocks of 65536 from 0x68000000.
const usernsPoolStart = 0x68000000

// startWardUserns starts a containerd whose "ward" handler runs a policy
// with the userns step on, a private pool and allocator directory, and
// containerd's per-sandbox files (hosts, resolv.conf, hostname, /dev/shm)
// counted as runtime-managed, as the default policy counts the real
// containerd's.
func startWardUserns(t *testing.T) (*harness.Containerd, string) {
	harness.Require(t)
	shimBin := harness.WardBin(t, "containerd-shim-ward-v2")
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	runsc, _ := exec.LookPath("runsc")
	dir := harness.NewDir(t)
	// Container root is an unprivileged host ID: it must reach its
	// bundle's root filesystem, as under any user namespace.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "userns")
	pol := filepath.Join(dir, "policy.yaml")
	sub := filepath.Join(dir, "subid")
	cfg := filepath.Join(dir, "ward-shim.yaml")
	writeFile(t, pol, "apiVersion: ward.dev/v1alpha1\nkind: Policy\nnode:\n  kubeletRoot: "+filepath.Join(dir, "kubelet")+"\n  runtimeDirs:\n"+
		"    - "+filepath.Join(dir, "root", "io.containerd.grpc.v1.cri", "sandboxes")+"\n"+
		"    - "+filepath.Join(dir, "state", "io.containerd.grpc.v1.cri", "sandboxes")+"\n"+
		"userns:\n  enabled: true\n")
	writeFile(t, sub, fmt.Sprintf("ward:%d:%d\n", usernsPoolStart, 100*65536))
	writeFile(t, cfg, "stateDir: "+filepath.Join(dir, "ward")+"\npolicy: "+pol+"\nbackends:\n  runc: {binary: "+runc+"}\n  gvisor: {binary: "+runsc+"}\n"+
		"userns:\n  subuid: "+sub+"\n  subgid: "+sub+"\n  stateDir: "+state+"\n")
	c := harness.StartContainerd(t, harness.Config{
		Dir: dir,
		Env: []string{"WARD_CONFIG=" + cfg},
		Runtimes: []harness.Runtime{{
			Name: "ward", Path: shimBin,
			Options: map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-ward"), "SystemdCgroup": false},
		}},
	})
	return c, state
}

func allocated(t *testing.T, state string) map[string]struct{ Start, Size uint32 } {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, "ranges.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Owners map[string]struct{ Start, Size uint32 } `json:"owners"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st.Owners
}

// hostPid is a CRI container's init process on the host.
func hostPid(t *testing.T, c *harness.Containerd, id string) int {
	t.Helper()
	out, _, err := c.Crictl("inspect", id)
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil || in.Info.Pid == 0 {
		t.Fatalf("crictl inspect %s: %v", id, err)
	}
	return in.Info.Pid
}

// TestUsernsPod runs a CRI pod of two app containers through the shim with
// the userns step on: the pod gets one block, both containers share the
// sandbox's user namespace, container root is the block's first ID on the
// host, the pod's /etc/hosts, resolv.conf and hostname work, an emptyDir
// is writable (idmapped) and a hostPath's host-root file is not, and the
// block goes back when the pod is removed.
func TestUsernsPod(t *testing.T) {
	c, state := startWardUserns(t)
	p, err := c.RunPod(harness.Pod{Name: "userns", Handler: "ward"})
	if err != nil {
		t.Fatalf("pod: %v\n%s", err, c.LogTail(60))
	}
	// A second app container in the same pod, with an emptyDir-like
	// volume (a directory the kubelet would make, 0777, under its pods
	// directory) and a hostPath holding a host-root-owned file.
	emptyDir := filepath.Join(c.Dir, "kubelet", "pods", p.UID, "volumes", "kubernetes.io~empty-dir", "data")
	hostDir := filepath.Join(c.Dir, "hostpath")
	for _, d := range []string{emptyDir, hostDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(emptyDir, 0o777)
	writeFile(t, filepath.Join(hostDir, "rootfile"), "host root's\n")
	ctr2 := map[string]any{
		"metadata": map[string]any{"name": "app2", "attempt": 0},
		"image":    map[string]any{"image": harness.BusyboxImage},
		"command":  []string{"sleep", "3600"},
		"log_path": "app2/0.log",
		"mounts": []map[string]any{
			{"container_path": "/data", "host_path": emptyDir},
			{"container_path": "/host", "host_path": hostDir},
		},
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"network": 0, "pid": 1, "ipc": 0}}},
	}
	data, _ := json.Marshal(ctr2)
	ctr2Path := filepath.Join(c.Dir, "pods", "userns-app2.json")
	writeFile(t, ctr2Path, string(data))
	id2, _, err := c.Crictl("create", p.SandboxID, ctr2Path, filepath.Join(c.Dir, "pods", "userns-pod.json"))
	if err != nil {
		t.Fatalf("second container: %v\n%s", err, c.LogTail(60))
	}
	if _, _, err := c.Crictl("start", id2); err != nil {
		t.Fatalf("starting the second container: %v\n%s", err, c.LogTail(60))
	}

	owners := allocated(t, state)
	block, ok := owners["pod:"+p.SandboxID]
	if !ok || len(owners) != 1 {
		t.Fatalf("allocator owners %v, want one block for the pod", owners)
	}
	wantMap := fmt.Sprintf("0 %d 65536", block.Start)
	self, _ := os.Readlink("/proc/self/ns/user")
	var nsOf []string
	for _, id := range []string{p.ContainerID, id2} {
		m, err := c.Exec(id, "cat", "/proc/self/uid_map")
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := strings.Join(strings.Fields(m), " "); got != wantMap {
			t.Errorf("%s: uid_map %q, want %q", id, got, wantMap)
		}
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", hostPid(t, c, id)))
		if err != nil {
			t.Fatal(err)
		}
		nsOf = append(nsOf, ns)
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPid(t, c, id)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "Uid:") {
				if f := strings.Fields(l); len(f) != 5 || f[1] != fmt.Sprint(block.Start) {
					t.Errorf("%s: container root seen from the host: %q, want %d", id, l, block.Start)
				}
			}
		}
		for _, f := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
			if _, err := c.Exec(id, "cat", f); err != nil {
				t.Errorf("%s: reading %s: %v", id, f, err)
			}
		}
		if _, err := c.Exec(id, "sh", "-c", "echo 198.51.100.99 extra >> /etc/hosts && touch /tmp/x"); err != nil {
			t.Errorf("%s: container root cannot write its pod's /etc/hosts or /tmp: %v", id, err)
		}
	}
	// The emptyDir is idmapped: container root's file is UID 0 on disk.
	// The hostPath is not: container root cannot write host root's file.
	if _, err := c.Exec(id2, "touch", "/data/made"); err != nil {
		t.Errorf("container root cannot write the emptyDir: %v", err)
	} else if u := harness.FileUID(t, filepath.Join(emptyDir, "made")); u != 0 {
		t.Errorf("file made in the emptyDir is owned by %d on the host, want 0 (idmapped)", u)
	}
	if _, err := c.Exec(id2, "sh", "-c", "echo pwned >> /host/rootfile"); err == nil {
		t.Error("container root wrote a host-root-owned file in a hostPath")
	}
	if nsOf[0] != nsOf[1] || nsOf[0] == self {
		t.Errorf("user namespaces: app %s, app2 %s, host %s; want the two shared and not the host's", nsOf[0], nsOf[1], self)
	}

	if err := c.RemovePod(p.SandboxID); err != nil {
		t.Fatal(err)
	}
	if owners := allocated(t, state); len(owners) != 0 {
		t.Errorf("block not returned after the pod was removed: %v", owners)
	}
}

// shimPid finds the shim process serving a pod.
func shimPid(t *testing.T, sandboxID string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(data), "\x00")
		if strings.HasSuffix(args[0], "containerd-shim-ward-v2") && slices.Contains(args, sandboxID) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no shim process for pod %s", sandboxID)
	return 0
}

// TestUsernsShimKilled kills a pod's shim with SIGKILL: the shim never
// sees the sandbox's Delete, and the block must come back through
// containerd's cleanup of the dead shim (`shim delete`) when the pod is
// removed.
func TestUsernsShimKilled(t *testing.T) {
	c, state := startWardUserns(t)
	p, err := c.RunPod(harness.Pod{Name: "killed", Handler: "ward"})
	if err != nil {
		t.Fatalf("pod: %v\n%s", err, c.LogTail(60))
	}
	if owners := allocated(t, state); len(owners) != 1 {
		t.Fatalf("allocator owners %v, want the pod's block", owners)
	}
	if err := syscall.Kill(shimPid(t, p.SandboxID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Crictl("stopp", p.SandboxID)
	c.Crictl("rmp", "-f", p.SandboxID)
	var owners map[string]struct{ Start, Size uint32 }
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if owners = allocated(t, state); len(owners) == 0 {
			return
		}
	}
	t.Errorf("block of the pod whose shim was killed not returned: %v\n%s", owners, c.LogTail(30))
}
