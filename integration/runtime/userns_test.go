package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/userns"
)

// usernsPoolStart is the test pool's first host ID: 100 blocks of 65536
// from 0x70000000, far from any ID this machine uses.
const usernsPoolStart = 0x70000000

// usernsEnv is env with a policy that turns the userns step on, a pool of
// 100 blocks in private subuid/subgid files, and a private allocator
// directory. Binds from dir/managed count as runtime-managed volumes.
func usernsEnv(t *testing.T) (*env, string) {
	e := newEnv(t)
	// A container's root is an unprivileged host ID: it must be able to
	// reach its root filesystem, as under any user namespace.
	if err := os.Chmod(e.dir, 0o711); err != nil {
		t.Fatal(err)
	}
	managed := filepath.Join(e.dir, "managed")
	state := filepath.Join(e.dir, "userns-state")
	pol := filepath.Join(e.dir, "policy.yaml")
	sub := filepath.Join(e.dir, "subid")
	writeFile(t, pol, "apiVersion: ward.dev/v1alpha1\nkind: Policy\nnode:\n  runtimeDirs: ["+managed+"]\nuserns:\n  enabled: true\n", 0o644)
	writeFile(t, sub, fmt.Sprintf("ward:%d:%d\n", usernsPoolStart, 100*userns.BlockSize), 0o644)
	// This test's own pool replaces the one every env gets.
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	base, _, _ := strings.Cut(string(cfg), "userns:\n")
	writeFile(t, e.config, base+fmt.Sprintf("policy: %s\nuserns:\n  subuid: %s\n  subgid: %s\n  stateDir: %s\n", pol, sub, sub, state), 0o644)
	return e, state
}

func writeFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func bind(src, dst string) map[string]any {
	return map[string]any{"destination": dst, "type": "bind", "source": src, "options": []string{"rbind", "rw"}}
}

// owners reads the allocator's blocks through the allocator, which frees
// those of writable layers that are gone (a container's block belongs to
// its layer, see userns.LayerOwner).
func owners(t *testing.T, state string) map[string]userns.Range {
	t.Helper()
	if _, err := os.Stat(filepath.Join(state, "ranges.json")); err != nil {
		t.Fatal(err)
	}
	// The pool matters only for allocating.
	a, err := userns.NewAllocator(state, []userns.Range{{Start: 1 << 20, Size: userns.BlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Owners()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// initPid is a running container's init process as the backend reports it.
func (e *env) initPid(root, id string) int {
	e.t.Helper()
	out, stderr, code := e.wardRun(root, "state", id)
	if code != 0 {
		e.t.Fatalf("state %s: %s", id, stderr)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Pid == 0 {
		e.t.Fatalf("state %s: %q %v", id, out, err)
	}
	return st.Pid
}

func waitFile(t *testing.T, p string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if data, err := os.ReadFile(p); err == nil && len(data) > 0 {
			return string(data)
		}
	}
	t.Fatalf("%s never appeared", p)
	return ""
}

// TestUsernsDirect runs one container through ward-runtime with the userns
// step on and looks from both sides: the container's uid_map, its root's
// UID on the host, the owner of files it writes to a runtime-managed volume
// (idmapped), to an open host directory and to its root filesystem, and a
// host-root-owned file in a host path that container root must not write.
func TestUsernsDirect(t *testing.T) {
	e, state := usernsEnv(t)
	root := filepath.Join(e.dir, "root")
	vol := filepath.Join(e.dir, "managed", "u1", "vol")
	host := filepath.Join(e.dir, "hostdir")
	writeFile(t, filepath.Join(host, "rootfile"), "host root's\n", 0o644)
	if err := os.MkdirAll(filepath.Join(host, "open"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(host, "open"), 0o777)
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `cat /proc/self/uid_map > /vol/uid_map; touch /vol/made /host/open/made; ` +
		`(echo pwned >> /host/rootfile) 2>/vol/hosterr; echo $? > /vol/hostrc.tmp; ` +
		`(touch /tmp/made) 2>/vol/rootfserr; echo $? > /vol/rootfsrc; mv /vol/hostrc.tmp /vol/hostrc; sleep 60`
	b := e.newBundle("userns", []string{"sh", "-c", script}, func(s spec) {
		s["root"].(spec)["readonly"] = false
		s["mounts"] = append(s["mounts"].([]any), bind(vol, "/vol"), bind(host, "/host"))
	})
	if out, err := e.wardDetached(root, "create", "--bundle", b, "u1"); err != nil {
		t.Fatalf("create: %v: %s", err, out)
	}
	defer e.wardRun(root, "delete", "--force", "u1")
	if _, stderr, code := e.wardRun(root, "start", "u1"); code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	got := owners(t, state)
	block, ok := got["ward-runtime:"+root+":u1"]
	if !ok || len(got) != 1 {
		t.Fatalf("allocator owners %v", got)
	}
	waitFile(t, filepath.Join(vol, "hostrc"))
	base := strconv.FormatUint(uint64(block.Start), 10)

	if m := strings.Fields(waitFile(t, filepath.Join(vol, "uid_map"))); len(m) != 3 || m[0] != "0" || m[1] != base || m[2] != "65536" {
		t.Errorf("uid_map inside %q, want 0 %s 65536", m, base)
	}
	if block.Start < usernsPoolStart {
		t.Errorf("block %v is outside the pool", block)
	}
	pid := e.initPid(root, "u1")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") {
			if f := strings.Fields(line); len(f) != 5 || f[1] != base || f[4] != base {
				t.Errorf("container root seen from the host: %q, want %s", line, base)
			}
			t.Logf("host view of container root: %s", line)
		}
	}
	// Managed volume: idmapped, so container root's file is UID 0 on disk.
	if u := harness.FileUID(t, filepath.Join(vol, "made")); u != 0 {
		t.Errorf("file made in the managed volume is owned by %d on the host, want 0 (idmapped)", u)
	}
	// Host path: not idmapped, so the file carries the mapped UID.
	if u := harness.FileUID(t, filepath.Join(host, "open", "made")); u != block.Start {
		t.Errorf("file made in the host path is owned by %d, want the mapped %d", u, block.Start)
	}
	if rc := strings.TrimSpace(waitFile(t, filepath.Join(vol, "hostrc"))); rc == "0" {
		t.Errorf("container root wrote a host-root-owned file in a host path")
	}
	if data, _ := os.ReadFile(filepath.Join(host, "rootfile")); string(data) != "host root's\n" {
		t.Errorf("host file now %q", data)
	}
	if rc := strings.TrimSpace(waitFile(t, filepath.Join(vol, "rootfsrc"))); rc != "0" {
		errOut, _ := os.ReadFile(filepath.Join(vol, "rootfserr"))
		t.Errorf("container root could not write its own root filesystem (rc %s): %s", rc, errOut)
	} else if u := harness.FileUID(t, filepath.Join(b, "rootfs", "tmp", "made")); u != 0 {
		t.Errorf("file in the idmapped root filesystem is owned by %d on disk, want 0", u)
	}
	if harness.FileUID(t, filepath.Join(b, "rootfs", "bin", "busybox")) != 0 {
		t.Error("an image file changed owner: the root filesystem must be idmapped, not chowned")
	}

	e.wardRun(root, "kill", "u1", "KILL")
	time.Sleep(200 * time.Millisecond)
	if _, stderr, code := e.wardRun(root, "delete", "--force", "u1"); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	assertReleased(t, state, "delete")
}

// assertReleased checks that every block went back and no idmapped root
// filesystem was left mounted or on disk.
func assertReleased(t *testing.T, state, after string) {
	t.Helper()
	if got := owners(t, state); len(got) != 0 {
		t.Errorf("blocks still allocated after %s: %v", after, got)
	}
	if dirs, _ := filepath.Glob(filepath.Join(state, "rootfs", "*")); len(dirs) != 0 {
		t.Errorf("idmapped root filesystem left behind after %s: %v", after, dirs)
	}
}

// usernsScript prints, inside a container, what assertInside checks.
const usernsScript = "cat /proc/self/uid_map; touch /tmp/made && echo rootfs-ok; cat /etc/hosts >/dev/null && echo hosts-ok; id -u"

// assertInside checks usernsScript's output: a mapping from the test
// pool, a writable root filesystem, the manager's hosts file, root.
func assertInside(t *testing.T, manager, out string) {
	t.Helper()
	f := strings.Fields(out)
	if len(f) < 6 || f[0] != "0" || f[2] != "65536" || f[3] != "rootfs-ok" || f[4] != "hosts-ok" || f[5] != "0" {
		t.Errorf("inside a %s container under ward's user namespace: %q", manager, out)
		return
	}
	if base, err := strconv.ParseUint(f[1], 10, 32); err != nil || base < usernsPoolStart {
		t.Errorf("uid_map host base %q is not from the pool", f[1])
	}
}

// TestUsernsConcurrentCreates creates 50 containers at once: 50 disjoint
// blocks, each container's uid_map (read from the host) its own block, and
// every block back after delete.
func TestUsernsConcurrentCreates(t *testing.T) {
	e, state := usernsEnv(t)
	root := filepath.Join(e.dir, "root")
	const n = 50
	shared := filepath.Join(e.dir, "shared-rootfs")
	rootfs(t, shared)
	var bundles [n]string
	for i := range bundles {
		bundles[i] = e.newBundle("c"+strconv.Itoa(i), []string{"sleep", "60"}, func(s spec) {
			s["root"].(spec)["path"] = shared
		})
	}
	defer func() {
		for i := 0; i < n; i++ {
			e.wardRun(root, "delete", "--force", "c"+strconv.Itoa(i))
		}
	}()
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// The container inherits stdio: a file, not the test's pipes.
			out := filepath.Join(bundles[i], "create.out")
			f, err := os.Create(out)
			if err != nil {
				errs[i] = err.Error()
				return
			}
			defer f.Close()
			cmd := exec.Command(e.ward, "--root", root, "create", "--bundle", bundles[i], "c"+strconv.Itoa(i))
			cmd.Env = e.environ()
			cmd.Stdout, cmd.Stderr = f, f
			if err := cmd.Run(); err != nil {
				data, _ := os.ReadFile(out)
				errs[i] = err.Error() + ": " + string(data)
			}
		}(i)
	}
	wg.Wait()
	for i, msg := range errs {
		if msg != "" {
			t.Errorf("create c%d: %s", i, msg)
		}
	}
	got := owners(t, state)
	if len(got) != n {
		t.Fatalf("%d blocks allocated, want %d", len(got), n)
	}
	var seen []userns.Range
	for i := 0; i < n; i++ {
		id := "c" + strconv.Itoa(i)
		r := got["ward-runtime:"+root+":"+id]
		for _, o := range seen {
			if o.Overlaps(r) {
				t.Errorf("%s's block %v overlaps %v", id, r, o)
			}
		}
		seen = append(seen, r)
		m, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", e.initPid(root, id)))
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(m)); len(f) != 3 || f[1] != strconv.FormatUint(uint64(r.Start), 10) {
			t.Errorf("%s: uid_map %q, want its block %v", id, m, r)
		}
	}
	for i := 0; i < n; i++ {
		if _, stderr, code := e.wardRun(root, "delete", "--force", "c"+strconv.Itoa(i)); code != 0 {
			t.Errorf("delete c%d: %s", i, stderr)
		}
	}
	if got := owners(t, state); len(got) != 0 {
		t.Errorf("%d blocks still allocated after deleting every container", len(got))
	}
}

// TestUsernsDocker runs Docker's containers through ward-runtime with the
// userns step on: Docker's overlay2 root filesystem (an overlay mount,
// which cannot be idmapped itself) is re-mounted with idmapped lower
// layers, and its network namespace (made by Docker, owned by the host's
// user namespace) gets the sysfs and sysctl treatment.
func TestUsernsDocker(t *testing.T) {
	e, state := usernsEnv(t)
	d := startDockerd(e)
	d.importBusybox()
	out, stderr, code := d.docker("run", "--rm", "--runtime", "ward", "--network", "none", harness.BusyboxImage, "sh", "-c", usernsScript)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, d.logTail())
	}
	assertInside(t, "Docker", out)
	assertReleased(t, state, "docker run --rm")
}

// TestUsernsPodman is TestUsernsDocker through Podman: its overlay root
// filesystem and its own network namespace path.
func TestUsernsPodman(t *testing.T) {
	e, state := usernsEnv(t)
	p := newPodman(e)
	img := filepath.Join(e.dir, "images")
	if out, err := exec.Command(filepath.Join(harness.RepoRoot(t), "integration/image/build-busybox.sh"), img).CombinedOutput(); err != nil {
		t.Fatalf("building images: %v: %s", err, out)
	}
	if _, stderr, code := p.run("load", "-i", filepath.Join(img, "busybox.tar")); code != 0 {
		t.Fatalf("podman load: %s", stderr)
	}
	out, stderr, code := p.run(append(podmanRun(), harness.BusyboxImage, "sh", "-c", usernsScript)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	assertInside(t, "Podman", out)
	// Podman 4.3 calls the runtime's delete without its --runtime-flag
	// options, so ward-runtime reads its default configuration there: on a
	// node, /etc/ward/runtime.yaml, the one create read too. Here create
	// read the test's file, so the delete is repeated as a node would see
	// it: with the same configuration.
	recs, _ := filepath.Glob(filepath.Join(e.dir, "default-root", "ward", "*.json"))
	if len(recs) != 1 {
		t.Fatalf("ward records %v, want the one container's", recs)
	}
	id := strings.TrimSuffix(filepath.Base(recs[0]), ".json")
	if _, stderr, code := e.wardRun(filepath.Join(e.dir, "default-root"), "delete", "--force", id); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	assertReleased(t, state, "podman run --rm and delete")

	// podman cp into a running container writes through ward's overlay as
	// host root (stored as the ID past the block); podman commit then
	// reads the layer with no runtime call in between. The node's
	// supervisor gives the copy to the container's root when a host
	// process opens the layer (docs/userns.md): stored as 0, as under runc.
	out, stderr, code = p.run("run", "-d", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		harness.BusyboxImage, "sleep", "60")
	if code != 0 {
		t.Fatalf("podman run -d: %s", stderr)
	}
	ctr := strings.TrimSpace(out)
	src := filepath.Join(e.dir, "copied")
	writeFile(t, src, "copied\n", 0o644)
	if _, stderr, code := p.run("cp", src, ctr+":/copied"); code != 0 {
		t.Fatalf("podman cp: %s", stderr)
	}
	upper, stderr, code := p.run("inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", ctr)
	if code != 0 {
		t.Fatalf("podman inspect: %s", stderr)
	}
	upper = strings.TrimSpace(upper)
	if _, err := os.ReadDir(upper); err != nil {
		t.Fatal(err)
	}
	if got := harness.FileUID(t, filepath.Join(upper, "copied")); got != 0 {
		t.Errorf("podman cp's file stored as %d once the host read the layer, want 0", got)
	}
	p.run("rm", "--force", "--time", "0", ctr)
	if recs, _ = filepath.Glob(filepath.Join(e.dir, "default-root", "ward", "*.json")); len(recs) == 1 {
		id := strings.TrimSuffix(filepath.Base(recs[0]), ".json")
		if _, stderr, code := e.wardRun(filepath.Join(e.dir, "default-root"), "delete", "--force", id); code != 0 {
			t.Fatalf("delete: %s", stderr)
		}
	}
	assertReleased(t, state, "podman rm and delete")
}

// TestUsernsUnidmappable puts a bundle's root filesystem on ramfs, which
// refuses idmapped mounts: the default (onUnidmappable: reject) refuses the
// container and gives its block back; chown runs it with the files' owners
// changed to the mapped IDs.
func TestUsernsUnidmappable(t *testing.T) {
	e, state := usernsEnv(t)
	root := filepath.Join(e.dir, "root")
	ram := filepath.Join(e.dir, "ramfs-rootfs")
	if err := os.MkdirAll(ram, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("ramfs", ram, "ramfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	rootfs(t, ram)
	b := e.newBundle("ramfs", []string{"sh", "-c", "cat /proc/self/uid_map"}, func(s spec) {
		s["root"].(spec)["path"] = ram
	})
	_, stderr, code := e.wardRun(root, "run", "--bundle", b, "r1")
	if code == 0 || !strings.Contains(stderr, "cannot be idmapped") || !strings.Contains(stderr, "onUnidmappable is reject") {
		t.Errorf("ramfs root filesystem under reject: exit %d: %s", code, stderr)
	}
	assertReleased(t, state, "a refused create")
	if harness.FileUID(t, filepath.Join(ram, "bin", "busybox")) != 0 {
		t.Fatal("a refused container changed file owners")
	}

	pol := filepath.Join(e.dir, "policy.yaml")
	data, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, pol, string(data)+"  onUnidmappable: chown\n", 0o644)
	// A root outside the bundle and node.rootfsDirs is not proved a
	// container's: ward never chowns it.
	_, stderr, code = e.wardRun(root, "run", "--bundle", b, "r2")
	if code == 0 || !strings.Contains(stderr, "rootfs-unproven") {
		t.Errorf("chown of an unproven root filesystem: exit %d: %s", code, stderr)
	}
	if harness.FileUID(t, filepath.Join(ram, "bin", "busybox")) != 0 {
		t.Fatal("an unproven root filesystem was chowned")
	}
	data, err = os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, pol, strings.Replace(string(data), "node:\n", "node:\n  rootfsDirs: ["+e.dir+"]\n", 1), 0o644)
	stdout, stderr, code := e.wardRun(root, "run", "--bundle", b, "r2")
	if code != 0 {
		t.Fatalf("ramfs root filesystem under chown: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "cannot be idmapped") || !strings.Contains(stderr, "changed the owner of") {
		t.Errorf("the chown fallback was not logged: %s", stderr)
	}
	f := strings.Fields(stdout)
	if len(f) != 3 || f[0] != "0" {
		t.Fatalf("uid_map %q", stdout)
	}
	if u := harness.FileUID(t, filepath.Join(ram, "bin", "busybox")); strconv.FormatUint(uint64(u), 10) != f[1] {
		t.Errorf("busybox owned by %d after the chown fallback, want the mapped root %s", u, f[1])
	}
	if _, stderr, code := e.wardRun(root, "delete", "--force", "r2"); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	assertReleased(t, state, "delete")
}

// TestUsernsForegroundRun: a foreground `run` ends with the backend, which
// deletes the container after ward has handed the process over. ward's
// reaper must then give back the block and the idmapped root filesystem and
// forget the record; with --keep the container stays, and so do they, until
// its delete.
func TestUsernsForegroundRun(t *testing.T) {
	e, state := usernsEnv(t)
	root := filepath.Join(e.dir, "root")
	b := e.newBundle("fg", []string{"sh", "-c", "cat /proc/self/uid_map; exit 3"}, nil)
	stdout, stderr, code := e.wardRun(root, "run", "--bundle", b, "fg1")
	if code != 3 {
		t.Fatalf("run: exit %d, want the container's 3: %s", code, stderr)
	}
	if f := strings.Fields(stdout); len(f) != 3 || f[0] != "0" || f[1] == "0" {
		t.Errorf("uid_map inside %q: not ward's user namespace", stdout)
	}
	record := filepath.Join(root, "ward", "fg1.json")
	gone := func() bool {
		_, err := os.Stat(record)
		dirs, _ := filepath.Glob(filepath.Join(state, "rootfs", "*"))
		return len(owners(t, state)) == 0 && len(dirs) == 0 && errors.Is(err, fs.ErrNotExist)
	}
	for deadline := time.Now().Add(10 * time.Second); !gone() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	assertReleased(t, state, "a foreground run")
	if _, err := os.Stat(record); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record of the foreground run left: %v", err)
	}

	if _, stderr, code := e.wardRun(root, "run", "--keep", "--bundle", b, "fg2"); code != 3 {
		t.Fatalf("run --keep: exit %d: %s", code, stderr)
	}
	time.Sleep(time.Second)
	if got := owners(t, state); len(got) != 1 {
		t.Errorf("after run --keep the kept container's block went: owners %v", got)
	}
	if _, stderr, code := e.wardRun(root, "delete", "fg2"); code != 0 {
		t.Fatalf("delete: %s", stderr)
	}
	assertReleased(t, state, "delete of a kept container")
}
