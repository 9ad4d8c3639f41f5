package admission

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/policy"
)

// TestNetnsOf: a sandbox of its own is judged by the network namespace its
// spec reaches on the node, not by how the path is spelled: one a process
// already lives in (another container's) is joined, one only pinned by a
// bind mount (CNI's, Podman's for a new container) or made by the runtime
// is the container's own, the node's is the node's however it is reached.
func TestNetnsOf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create and pin network namespaces")
	}
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tenant := exec.Command("sleep", "60")
	tenant.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := tenant.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { tenant.Process.Kill(); tenant.Wait() }()
	lived := filepath.Join("/proc", strconv.Itoa(tenant.Process.Pid), "ns", "net")

	// A namespace pinned at a file with nobody in it, as CNI leaves one.
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	pinned := filepath.Join(dir, "pinned")
	if err := os.WriteFile(pinned, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = syscall.Mount(filepath.Join("/proc", strconv.Itoa(other.Process.Pid), "ns", "net"), pinned, "", syscall.MS_BIND, "")
	other.Process.Kill()
	other.Wait()
	if err != nil {
		t.Fatalf("pinning a namespace: %v", err)
	}
	defer syscall.Unmount(pinned, syscall.MNT_DETACH)
	// The same lived-in namespace, spelled through a link.
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink(lived, link); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		ns   []specs.LinuxNamespace
		pod  bool
		want netnsUse
	}{
		{"runtime makes it", []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}, false, netnsOwn},
		{"no network namespace", nil, false, netnsNode},
		{"another container's", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: lived}}, false, netnsJoined},
		{"another container's, through a link", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: link}}, false, netnsJoined},
		{"pinned, nobody in it", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: pinned}}, false, netnsOwn},
		{"the node's", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}, false, netnsNode},
		{"a pod's app container", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: filepath.Join(dir, "gone")}}, true, netnsJoined},
		{"nothing there", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: filepath.Join(dir, "gone")}}, false, netnsOwn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Linux: &specs.Linux{Namespaces: tc.ns}}
			in := &policy.Input{Spec: s, Node: nodefacts.Gather(s, dir, p, nodefacts.Options{Node: nodefacts.OwnNamespaces()})}
			if tc.pod {
				in.Pod = &policy.PodContext{Action: policy.Harden, Backend: policy.Runc}
			}
			if got := netnsOf(s, in); got != tc.want {
				t.Errorf("netnsOf = %d, want %d", got, tc.want)
			}
		})
	}
}
