package userns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func owner(t *testing.T, p string) uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// TestIdmapRootfs idmaps a plain directory and an overlay, as ward-runtime
// does for bundles: on this kernel (6.x) an ext4 bind and overlay lower
// layers can be idmapped, an overlay mount itself cannot.
func TestIdmapRootfs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: mounts")
	}
	r := Range{Start: 1 << 30, Size: BlockSize}
	ns, err := NewNamespace(r)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tmp := t.TempDir()
	lower := filepath.Join(tmp, "lower")
	for _, d := range []string{lower, tmp + "/upper", tmp + "/work", tmp + "/merged"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(lower+"/f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("plain", func(t *testing.T) {
		rf, err := IdmapRootfs(lower, filepath.Join(tmp, "ward-plain"), ns, r)
		if err != nil {
			t.Fatal(err)
		}
		if got := owner(t, rf.Path+"/f"); got != r.Start {
			t.Errorf("owner through the idmapped mount %d, want %d", got, r.Start)
		}
		if err := rf.Release(); err != nil {
			t.Fatal(err)
		}
		if owner(t, lower+"/f") != 0 {
			t.Error("the file itself changed owner")
		}
		if _, err := os.Stat(rf.Path); !os.IsNotExist(err) {
			t.Errorf("ward's directory is still there: %v", err)
		}
	})

	t.Run("overlay", func(t *testing.T) {
		merged := tmp + "/merged"
		if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+tmp+"/upper,workdir="+tmp+"/work"); err != nil {
			t.Fatal(err)
		}
		defer unix.Unmount(merged, unix.MNT_DETACH)
		if err := ns.IdmapBind(merged, t.TempDir()); err == nil {
			t.Log("this kernel idmaps overlay mounts themselves")
		}
		rf, err := IdmapRootfs(merged, filepath.Join(tmp, "ward-ovl"), ns, r)
		if err != nil {
			t.Fatal(err)
		}
		defer rf.Release()
		if got := owner(t, rf.Path+"/f"); got != r.Start {
			t.Errorf("lower file through the overlay owned by %d, want %d", got, r.Start)
		}
		if got := owner(t, rf.Path); got != r.Start {
			t.Errorf("overlay root owned by %d, want the mapped root %d", got, r.Start)
		}
		if err := rf.Release(); err != nil {
			t.Fatal(err)
		}
		if owner(t, lower+"/f") != 0 {
			t.Error("the lower layer's file changed owner")
		}
	})
}

func TestParseOverlayAndUnescape(t *testing.T) {
	o, err := ParseOverlay("rw,lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off")
	if err != nil || len(o.Lower) != 2 || o.Upper != "/u" || o.Work != "/w" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := ParseOverlay(`lowerdir=/a\054b`); err == nil {
		t.Error("escaped option accepted")
	}
	if got := unescape(`/a\040b`); got != "/a b" {
		t.Errorf("unescape %q", got)
	}
}

// BenchmarkNewNamespace is the namespace every idmapped root filesystem
// costs. CPU and page faults include the child's (it is reaped in the
// loop): a process start is what it costs, not Go code.
func BenchmarkNewNamespace(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root")
	}
	usage := func() (cpu time.Duration, faults int64) {
		for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
			var ru unix.Rusage
			if err := unix.Getrusage(who, &ru); err != nil {
				b.Fatal(err)
			}
			cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			faults += ru.Minflt + ru.Majflt
		}
		return cpu, faults
	}
	cpu0, faults0 := usage()
	for b.Loop() {
		ns, err := NewNamespace(Range{Start: 1 << 30, Size: BlockSize})
		if err != nil {
			b.Fatal(err)
		}
		ns.Close()
	}
	cpu1, faults1 := usage()
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(faults1-faults0)/float64(b.N), "faults/op")
}

// BenchmarkAllocateRelease is one container's bookkeeping.
func BenchmarkAllocateRelease(b *testing.B) {
	a, err := NewAllocator(b.TempDir(), []Range{{Start: 1 << 30, Size: 16 * BlockSize}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := a.Allocate("c"); err != nil {
			b.Fatal(err)
		}
		if err := a.Release("c"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestChownRoundTrip: an upper layer given to a block at create and back
// at delete ends as it began, setuid bits and file capabilities included.
func TestChownRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	dir := t.TempDir()
	r := Range{Start: 1 << 30, Size: BlockSize}
	files := map[string]struct {
		uid, gid int
		mode     os.FileMode
	}{
		"root":    {0, 0, 0o644},
		"user":    {1000, 1000, 0o600},
		"setuid":  {0, 0, 0o755 | os.ModeSetuid},
		"foreign": {int(r.Start) + BlockSize + 5, 7, 0o644}, // another block's: left alone
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// A v2 file capability (cap_net_raw, effective), as setcap writes it.
	caps := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Lsetxattr(filepath.Join(dir, "setuid"), "security.capability", caps, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ChownTree(dir, r); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "user"), &st); err != nil || st.Uid != r.Start+1000 {
		t.Fatalf("after ChownTree: uid %d (%v)", st.Uid, err)
	}
	if _, err := UnchownTree(dir, r); err != nil {
		t.Fatal(err)
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if int(st.Uid) != f.uid || int(st.Gid) != f.gid || fi.Mode().Perm()|fi.Mode()&os.ModeSetuid != f.mode.Perm()|f.mode&os.ModeSetuid {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", name, st.Uid, st.Gid, fi.Mode(), f.uid, f.gid, f.mode)
		}
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "setuid"), "security.capability", buf); err != nil || string(buf[:n]) != string(caps) {
		t.Errorf("file capability lost: %x %v", buf[:max(n, 0)], err)
	}
}

// TestIdmappedUpper: ward's overlay of a manager's rootfs reaches the upper
// layer through an idmapped mount, so the layer stores what the container
// writes with the IDs it sees (as runc's would), marks opaque directories
// as the manager does (trusted.overlay.opaque), and a file the manager
// writes through its own overlay as host root (docker cp) is the container
// root's.
func TestIdmappedUpper(t *testing.T) {
	f := newUpperFixture(t)
	r, rf, tmp, layer, merged, ns := f.r, f.rf, f.tmp, f.layer, f.merged, f.ns
	// The container's root, in a user namespace of the block.
	cmd := exec.Command("sh", "-c", "touch new && mkdir d && chown 1000:1000 d && rm -rf opq && mkdir opq")
	cmd.Dir = rf.Path
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.Start), Size: int(r.Size)}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: m, GidMappings: m,
		Credential: &syscall.Credential{Uid: 0, Gid: 0}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("container root writing: %v: %s", err, out)
	}
	if got := owner(t, layer+"/diff/new"); got != 0 {
		t.Errorf("container root's file stored as %d, want 0", got)
	}
	if got := owner(t, layer+"/diff/d"); got != 1000 {
		t.Errorf("uid 1000's directory stored as %d, want 1000", got)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(layer+"/diff/opq", "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque directory not marked as the manager marks it: %q %v", buf[:max(n, 0)], err)
	}
	// The manager copies files in through its own overlay, as host root.
	// The two overlays share the upper layer, each with its own dentry
	// cache: a name the container looked up before the copy stays missing
	// in ward's overlay (its cached negative lookup), a new one is seen
	// (docs/userns.md).
	if _, err := os.Stat(rf.Path + "/looked-up"); !os.IsNotExist(err) {
		t.Fatalf("looked-up before the copy: %v", err)
	}
	for _, f := range []string{"copied", "looked-up"} {
		if err := os.WriteFile(merged+"/"+f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(rf.Path + "/looked-up"); err != nil {
		t.Logf("a name looked up before the manager wrote it stays missing in ward's overlay: %v", err)
	}
	if got := owner(t, rf.Path+"/copied"); got != r.Start {
		t.Errorf("the manager's copy is owned by %d inside, want the container's root %d", got, r.Start)
	}
	// A manager writing as host root through ward's overlay (podman cp
	// joins the container's mount namespace) is stored as the ID past
	// the block, not refused.
	if err := os.WriteFile(rf.Path+"/podman-cp", nil, 0o644); err != nil {
		t.Fatalf("host root writing through ward's overlay: %v", err)
	}
	if got := owner(t, layer+"/diff/podman-cp"); got != r.Size {
		t.Errorf("host root's file stored as %d, want %d", got, r.Size)
	}
	// While the container runs, AdoptHostRootWrites (ward-runtime's exec)
	// gives it to the container's root, through ward's overlay; a link the
	// container planted to a host file is not followed.
	if err := os.Mkdir(rf.Path+"/podman-dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rf.Path+"/podman-dir/suid", nil, 0o755); err != nil {
		t.Fatal(err)
	}
	hostFile := tmp + "/host-file"
	if err := os.WriteFile(hostFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(hostFile, int(r.Size), int(r.Size))
	if err := os.Symlink(hostFile, layer+"/diff/escape"); err != nil {
		t.Fatal(err)
	}
	os.Lchown(layer+"/diff/escape", int(r.Size), int(r.Size))
	n, err := rf.AdoptHostRootWrites(r)
	if err != nil {
		t.Fatalf("adopting host root's writes: %v", err)
	}
	for _, f := range []string{"podman-cp", "podman-dir", "podman-dir/suid"} {
		if got := owner(t, layer+"/diff/"+f); got != 0 {
			t.Errorf("%s stored as %d after adopting, want 0", f, got)
		}
		if got := owner(t, rf.Path+"/"+f); got != r.Start {
			t.Errorf("%s owned by %d through ward's overlay, want the container's root %d", f, got, r.Start)
		}
	}
	if got := owner(t, hostFile); got != r.Size {
		t.Errorf("a host file behind a link the container made was changed to %d", got)
	}
	t.Logf("adopted %d entries", n)
	// With the layer watched (the node's supervisor, for Podman), a
	// process of the host that reads the layer (podman commit's diff)
	// finds host root's copy adopted first, with no exec in between; the
	// container listing its / does not adopt.
	w := NewLayerWatch(t.Logf)
	defer w.Close()
	stop, err := w.Add(rf, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rf.Path+"/podman-cp2", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ls := exec.Command("ls", "-a", ".")
	ls.Dir = rf.Path
	ls.SysProcAttr = cmd.SysProcAttr
	if out, err := ls.CombinedOutput(); err != nil || !strings.Contains(string(out), "podman-cp2") {
		t.Fatalf("the container listing its /: %v: %s", err, out)
	}
	if got := owner(t, layer+"/diff/podman-cp2"); got != r.Size {
		t.Errorf("the container listing its / adopted host root's copy (%d)", got)
	}
	if out, err := exec.Command("ls", layer+"/diff").CombinedOutput(); err != nil {
		t.Fatalf("the host reading the layer: %v: %s", err, out)
	}
	if got := owner(t, layer+"/diff/podman-cp2"); got != 0 {
		t.Errorf("host root's copy stored as %d when the host read the layer, want 0", got)
	}
	// podman restart: the next container's watch of the layer comes
	// before the previous one's supervision ends, whose end must not
	// drop it.
	again, err := w.Add(rf, r)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if err := os.WriteFile(rf.Path+"/podman-cp3", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ls", layer+"/diff").CombinedOutput(); err != nil {
		t.Fatalf("the host reading the layer: %v: %s", err, out)
	}
	if got := owner(t, layer+"/diff/podman-cp3"); got != 0 {
		t.Errorf("after the previous watch's end, host root's copy stored as %d when the host read the layer, want 0", got)
	}
	again()
	if err := rf.Release(); err != nil {
		t.Fatal(err)
	}
	// The next create gives it to container root.
	rf2, err := IdmapRootfs(merged, tmp+"/ward", ns, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := rf2.Release(); err != nil {
		t.Fatal(err)
	}
	if got := owner(t, layer+"/diff/podman-cp"); got != 0 {
		t.Errorf("after the next create host root's file is stored as %d, want 0", got)
	}
	if _, err := os.Stat(tmp + "/ward"); !os.IsNotExist(err) {
		t.Errorf("ward's directory is still there: %v", err)
	}
}

// upperFixture is a manager's overlay (lower, layer/diff, layer/work,
// mounted at layer/merged) re-mounted by IdmapRootfs for the block r
// with an idmapped upper layer, as ward-runtime mounts Docker's and
// Podman's; removed when the test ends.
type upperFixture struct {
	r                         Range
	ns                        *Namespace
	tmp, lower, layer, merged string
	rf                        *Rootfs
}

func newUpperFixture(tb testing.TB) *upperFixture {
	tb.Helper()
	if os.Getuid() != 0 {
		tb.Skip("needs root: mounts")
	}
	f := &upperFixture{r: Range{Start: 1 << 30, Size: BlockSize}}
	var err error
	if f.ns, err = NewNamespace(f.r); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.ns.Close() })
	if f.tmp, err = os.MkdirTemp("/var/tmp", "ward-userns-test."); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(f.tmp) })
	// Searchable by the block's IDs, as a manager's directories are.
	os.Chmod(f.tmp, 0o711)
	f.lower, f.layer, f.merged = f.tmp+"/lower", f.tmp+"/layer", f.tmp+"/layer/merged"
	for _, d := range []string{f.lower, f.lower + "/opq", f.layer, f.layer + "/diff", f.layer + "/work", f.merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(f.lower+"/opq/old", nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Mount("overlay", f.merged, "overlay", 0, "lowerdir="+f.lower+",upperdir="+f.layer+"/diff,workdir="+f.layer+"/work"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Unmount(f.merged, unix.MNT_DETACH) })
	if f.rf, err = IdmapRootfs(f.merged, f.tmp+"/ward", f.ns, f.r); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.rf.Release() })
	if !strings.Contains(f.rf.How, "idmapped upper layer") || f.rf.Upper != "" {
		tb.Fatalf("upper layer not idmapped: %s", f.rf.How)
	}
	return f
}

// BenchmarkLayerWatchOpen is what the layer watch (the node's supervisor,
// for Podman's containers) costs an open of the container's / (a
// listing of /, the one open it marks): unwatched; watched, opened by a
// process of another user namespace (the container's, answered at once);
// watched, opened by a process of the host's (podman commit's read: a
// walk of the layer first, here a handful of entries). Each runs b.N
// opens in one child process (TestHelperOpenRoot). Alternate the cases
// with -count=30 for a ratio.
func BenchmarkLayerWatchOpen(b *testing.B) {
	f := newUpperFixture(b)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	// Host root in a user namespace of its own: the executable stays
	// reachable, and the namespace is not the host's.
	own := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	inNS := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: own, GidMappings: own}
	run := func(b *testing.B, attr *syscall.SysProcAttr) {
		cmd := exec.Command(self, "-test.run=^TestHelperOpenRoot$")
		cmd.Env = append(os.Environ(), "WARD_USERNS_OPEN="+f.rf.Path, "WARD_USERNS_OPEN_N="+strconv.Itoa(b.N))
		cmd.SysProcAttr = attr
		b.ResetTimer()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	b.Run("unwatched", func(b *testing.B) { run(b, inNS) })
	w := NewLayerWatch(b.Logf)
	defer w.Close()
	stop, err := w.Add(f.rf, f.r)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	b.Run("watched-container", func(b *testing.B) { run(b, inNS) })
	b.Run("watched-host", func(b *testing.B) { run(b, nil) })
}

// TestHelperOpenRoot is BenchmarkLayerWatchOpen's child: it opens and
// lists the directory $WARD_USERNS_OPEN $WARD_USERNS_OPEN_N times.
func TestHelperOpenRoot(t *testing.T) {
	dir := os.Getenv("WARD_USERNS_OPEN")
	if dir == "" {
		t.Skip("BenchmarkLayerWatchOpen's child")
	}
	n, err := strconv.Atoi(os.Getenv("WARD_USERNS_OPEN_N"))
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := os.ReadDir(dir); err != nil {
			t.Fatal(err)
		}
	}
}
