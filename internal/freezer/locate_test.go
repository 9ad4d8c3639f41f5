package freezer

import (
	"errors"
	"strings"
	"testing"
)

// hostMountinfo is this kind of node's table: cgroup v1 hybrid, the v1
// freezer controller and the unified hierarchy both mounted.
const hostMountinfo = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestFromMountinfo(t *testing.T) {
	for _, c := range []struct {
		name, table string
		want        Hierarchy
		unsupported bool
	}{
		{"hybrid", hostMountinfo, Hierarchy{1, "/sys/fs/cgroup/freezer"}, false},
		{"unified", "25 20 0:23 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", Hierarchy{2, "/sys/fs/cgroup"}, false},
		{"escaped", "36 30 0:33 / /mnt/cg\\040x rw - cgroup cgroup rw,freezer,cpu\n", Hierarchy{1, "/mnt/cg x"}, false},
		{"freezer in a name only", "39 30 0:36 / /sys/fs/cgroup/x rw - cgroup cgroup rw,name=freezerish\n", Hierarchy{}, true},
		{"none", "22 1 0:21 / /sys rw - sysfs sysfs rw\n", Hierarchy{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := FromMountinfo(strings.NewReader(c.table))
			if c.unsupported {
				if !errors.Is(err, ErrNotSupported) {
					t.Fatalf("got %v, %v; want ErrNotSupported", h, err)
				}
				return
			}
			if err != nil || h != c.want {
				t.Fatalf("got %v, %v; want %v", h, err, c.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	v1 := Hierarchy{1, "/sys/fs/cgroup/freezer"}
	v2 := Hierarchy{2, "/sys/fs/cgroup"}
	proc := func(freezer, unified string) string {
		return "9:name=systemd:/x\n6:freezer:" + freezer + "\n4:memory:/elsewhere\n0::" + unified + "\n"
	}
	const id = "c1"
	for _, c := range []struct {
		name        string
		h           Hierarchy
		cgroupsPath string
		proc        string
		want        string // "" for an error
		wantErr     string
	}{
		{"containerd cgroupfs absolute", v1, "/default/c1", proc("/default/c1", "/"), "/default/c1", ""},
		{"kubelet cgroupfs", v1, "/kubepods/besteffort/podu/c1", proc("/kubepods/besteffort/podu/c1", "/"), "/kubepods/besteffort/podu/c1", ""},
		{"init in a child cgroup of its own", v2, "/default/c1", proc("/", "/default/c1/init.scope"), "/default/c1", ""},
		{"systemd kubelet", v2, "kubepods-besteffort-podu.slice:cri-containerd:c1", proc("/", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu.slice/cri-containerd-c1.scope"),
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu.slice/cri-containerd-c1.scope", ""},
		{"systemd docker default slice", v2, ":docker:c1", proc("/", "/system.slice/docker-c1.scope"), "/system.slice/docker-c1.scope", ""},
		{"systemd root slice", v2, "-:p:c1", proc("/", "/p-c1.scope"), "/p-c1.scope", ""},
		{"systemd name is a slice", v2, "user.slice:ignored:mine.slice", proc("/", "/user.slice/mine.slice"), "/user.slice/mine.slice", ""},
		{"relative below the runtime's cgroup", v1, "ward/c1", proc("/user.slice/session-1.scope/ward/c1", "/"), "/user.slice/session-1.scope/ward/c1", ""},
		{"relative, last occurrence", v1, "c1", proc("/c1/inner/c1", "/"), "/c1/inner/c1", ""},
		{"empty: runc's relative default", v1, "", proc("/runner/c1", "/"), "/runner/c1", ""},
		{"empty: runc's systemd default", v2, "", proc("/", "/system.slice/runc-c1.scope"), "/system.slice/runc-c1.scope", ""},
		{"init elsewhere than the spec says", v1, "/default/other", proc("/default/c1", "/"), "", "not where linux.cgroupsPath"},
		{"prefix is not a parent", v1, "/default/c1", proc("/default/c10", "/"), "", "not where"},
		{"relative name only as a prefix", v1, "c1", proc("/x/c1x", "/"), "", "not where"},
		{"root refused", v1, "/", proc("/", "/"), "", "does not name a cgroup"},
		{"dotdot refused", v1, "../x", proc("/x", "/"), "", "does not name a cgroup"},
		{"systemd, two colons needed", v2, "a.slice:c1", proc("/", "/a.slice/c1.scope"), "", "slice:prefix:name"},
		{"systemd, not a slice", v2, "system:docker:c1", proc("/", "/system/docker-c1.scope"), "", "is not a slice"},
		{"systemd, empty name", v2, "system.slice:docker:", proc("/", "/system.slice"), "", "name is not empty"},
		{"no freezer line", v1, "/default/c1", "0::/default/c1\n", "", "no cgroup v1 freezer hierarchy"},
		{"deleted cgroup", v2, "/default/c1", proc("/", "/default/c1 (deleted)"), "", "deleted"},
		{"outside our cgroup namespace", v2, "/default/c1", proc("/", "../../c1"), "", "outside"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cg, err := Resolve(c.h, id, c.cgroupsPath, c.proc)
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, %v; want an error with %q", cg, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cg.Path != c.want || cg.Hierarchy != c.h {
				t.Fatalf("got %v in %v, want %s", cg.Path, cg.Hierarchy, c.want)
			}
		})
	}
}

func TestExpandSlice(t *testing.T) {
	for in, want := range map[string]string{
		"system.slice":             "/system.slice",
		"-.slice":                  "/",
		"-":                        "/",
		"kubepods-burstable.slice": "/kubepods.slice/kubepods-burstable.slice",
		"a-b-c.slice":              "/a.slice/a-b.slice/a-b-c.slice",
	} {
		if got := expandSlice(in); got != want {
			t.Errorf("expandSlice(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCgroupRefusesRootAndUnclean(t *testing.T) {
	h := Hierarchy{2, "/sys/fs/cgroup"}
	for _, p := range []string{"/", "", "a/b", "/a/../b", "/a/", "/a//b"} {
		if _, err := h.Cgroup(p); err == nil {
			t.Errorf("Cgroup(%q) accepted", p)
		}
	}
	if _, err := (Hierarchy{3, "/x"}).Cgroup("/a"); err == nil {
		t.Error("version 3 accepted")
	}
}
