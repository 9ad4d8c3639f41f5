//go:build linux

package nodefacts

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/policy"
)

func defaultPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func id(t *testing.T, p string) policy.ObjectID {
	t.Helper()
	o, _, ok := stat(p)
	if !ok {
		t.Fatalf("stat %s failed", p)
	}
	return o
}

func bind(src, dst string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rw"}}
}

// TestGatherResolvesLikeTheKernel: a symbolic link, a path through
// /proc/self/root and a relative source are all judged by the object they
// reach.
func TestGatherResolvesLikeTheKernel(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "rel")); err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			bind(link, "/a"), bind("/proc/self/root/etc", "/b"), bind("rel", "/c"),
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}},
	}
	f := Gather(s, dir, defaultPolicy(t), Options{})
	etc := id(t, "/etc")
	for _, src := range []string{link, "/proc/self/root/etc", "rel"} {
		o := f.Objects[src]
		if o.ID != etc || o.Kind != policy.KindDir {
			t.Errorf("%s: %+v, want /etc (%v)", src, o, etc)
		}
		if !slices.Contains(o.Ancestors, id(t, "/")) {
			t.Errorf("%s: ancestors %v lack /", src, o.Ancestors)
		}
	}
	if o := f.Objects[link]; o.Resolved != "/etc" {
		t.Errorf("resolved %q", o.Resolved)
	}
	if o := f.Objects["rootfs"]; o.Kind != policy.KindMissing {
		t.Errorf("missing rootfs: %+v", o)
	}
	if o := f.Objects["/proc/self/ns/net"]; o.Kind != policy.KindNamespace || o.ID != id(t, "/proc/self/ns/net") {
		t.Errorf("netns %+v", o)
	}
	if !slices.ContainsFunc(f.Sensitive, func(so policy.SensitiveObject) bool { return so.Path == "/etc" && so.ID == etc && so.Subtree }) {
		t.Errorf("sensitive set lacks /etc: %+v", f.Sensitive)
	}
}

// TestGatherFindsSocketListener: a mounted socket names the process that
// listens on it, however the mount source spells its path.
func TestGatherFindsSocketListener(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	alias := filepath.Join(dir, "harmless")
	if err := os.Symlink(sock, alias); err != nil {
		t.Fatal(err)
	}
	f := Gather(&specs.Spec{Mounts: []specs.Mount{bind(alias, "/run/x.sock")}}, dir, defaultPolicy(t), Options{})
	o := f.Objects[alias]
	comm, _ := os.ReadFile("/proc/self/comm")
	if o.Kind != policy.KindSocket || o.Listener == "" || o.Listener+"\n" != string(comm) {
		t.Errorf("socket %+v, want listener %q", o, comm)
	}
}

// TestIdentityCatchesBindAlias: a bind mount of /etc under an unfamiliar
// name is /etc to the checks (needs root to make the alias).
func TestIdentityCatchesBindAlias(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a bind mount needs root")
	}
	dir := t.TempDir()
	alias := filepath.Join(dir, "data")
	if err := os.Mkdir(alias, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/etc", alias, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	defer unix.Unmount(alias, unix.MNT_DETACH)
	p := defaultPolicy(t)
	s := &specs.Spec{
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"},
		Root:    &specs.Root{Path: "rootfs"},
		Mounts:  []specs.Mount{bind(alias, "/data")},
		Linux:   &specs.Linux{},
	}
	in := policy.Input{Spec: s, Workload: bundle.WorkloadOf(s), Node: Gather(s, dir, p, Options{})}
	d := policy.NewEvaluator(p).Evaluate(in)
	if !slices.ContainsFunc(d.Findings, func(f policy.Finding) bool { return f.Check.ID == policy.IDSensitiveHostPathWritable }) {
		t.Errorf("bind alias of /etc at %s not judged as /etc: %v", alias, d.Findings)
	}
	if d.Action != policy.Reject {
		t.Errorf("action %s", d.Action)
	}
}

// TestInhabited: a namespace a process lives in is inhabited, and no
// longer once that process is gone; the node's own always is.
func TestInhabited(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ns := id(t, filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "ns", "net"))
	if !Inhabited(specs.NetworkNamespace, ns, "") {
		t.Error("a namespace with a process in it reads as empty")
	}
	if Inhabited(specs.UTSNamespace, ns, "") {
		t.Error("a network namespace's identity matched a UTS namespace")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if Inhabited(specs.NetworkNamespace, ns, "") {
		t.Error("a namespace whose only process exited reads as inhabited")
	}
	if own := OwnNamespaces()[specs.NetworkNamespace]; !Inhabited(specs.NetworkNamespace, own, "") {
		t.Error("the node's network namespace reads as empty")
	}
}
