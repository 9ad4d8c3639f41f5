//go:build linux

package sensor

import (
	"testing"

	"golang.org/x/sys/unix"
)

func names(parts ...string) [6][32]int8 {
	var n [6][32]int8
	for i, p := range parts {
		for j := 0; j < len(p) && j < 31; j++ {
			n[i][j] = int8(p[j])
		}
	}
	return n
}

func cbuf[T ~[16]int8 | ~[256]int8](s string) T {
	var b T
	for i := 0; i < len(s) && i < len(b)-1; i++ {
		b[i] = int8(s[i])
	}
	return b
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name   string
		raw    sensorEvent
		ok     bool
		target Target
		path   string
	}{
		{"core_pattern by its dentries", sensorEvent{Kind: 1, Magic: procMagic, Names: names("core_pattern", "kernel", "sys", "/")}, true, CorePattern, "/proc/sys/kernel/core_pattern"},
		{"another sysctl", sensorEvent{Kind: 1, Magic: procMagic, Names: names("ip_forward", "ipv4", "net", "sys", "/")}, true, ProcSys, "/proc/sys/net/ipv4/ip_forward"},
		{"sysrq", sensorEvent{Kind: 1, Magic: procMagic, Names: names("sysrq-trigger", "/")}, true, SysrqTrigger, "/proc/sysrq-trigger"},
		{"deeper than the walk", sensorEvent{Kind: 1, Magic: procMagic, Names: names("f", "e", "d", "c", "b", "a")}, true, ProcSys, "/proc/.../a/b/c/d/e/f"},
		{"release_agent in a cgroup hierarchy", sensorEvent{Kind: 1, Magic: cgroupMagic, Names: names("release_agent", "/")}, true, ReleaseAgent, "/release_agent"},
		{"notify_on_release", sensorEvent{Kind: 1, Magic: cgroupMagic, Names: names("notify_on_release", "x", "/")}, true, NotifyOnRelease, "/x/notify_on_release"},
		{"uevent_helper", sensorEvent{Kind: 1, Magic: sysfsMagic, Names: names("uevent_helper", "kernel", "/")}, true, UeventHelper, "/sys/kernel/uevent_helper"},
		{"a write elsewhere", sensorEvent{Kind: 1, Magic: 0xef53, Names: names("release_agent", "/")}, false, "", ""},
		{"refused core_pattern through /proc/self/root", sensorEvent{Kind: 2, Ret: -int32(unix.EROFS), Path: cbuf[[256]int8]("/proc/self/root/proc/sys/kernel/core_pattern")}, true, CorePattern, "/proc/self/root/proc/sys/kernel/core_pattern"},
		{"refused relative release_agent", sensorEvent{Kind: 2, Ret: -int32(unix.EACCES), Path: cbuf[[256]int8]("release_agent")}, true, ReleaseAgent, "release_agent"},
		{"refused sysctl", sensorEvent{Kind: 2, Ret: -int32(unix.EROFS), Path: cbuf[[256]int8]("/proc/sys/vm/overcommit_memory")}, true, ProcSys, "/proc/sys/vm/overcommit_memory"},
		{"refused ordinary file", sensorEvent{Kind: 2, Ret: -int32(unix.EEXIST), Path: cbuf[[256]int8]("/var/lock/x.lock")}, false, "", ""},
		{"device", sensorEvent{Kind: 3, Rdev: 8<<20 | 0, Path: cbuf[[256]int8]("/dev/sda")}, true, HostDevice, "/dev/sda"},
		{"drift", sensorEvent{Kind: 4, Path: cbuf[[256]int8]("/tmp/x"), Comm: cbuf[[16]int8]("x")}, true, Drift, "/tmp/x"},
		{"unknown kind", sensorEvent{Kind: 9}, false, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, ok := decode(&c.raw)
			if ok != c.ok || (ok && (e.Target != c.target || e.Path != c.path)) {
				t.Fatalf("got %v %q %q, want %v %q %q", ok, e.Target, e.Path, c.ok, c.target, c.path)
			}
			if ok && c.raw.Kind == 2 && (!e.Failed || e.Errno == 0) {
				t.Fatalf("a refused attempt: %+v", e)
			}
		})
	}
	if Major(8<<20|3) != 8 || Minor(8<<20|3) != 3 {
		t.Error("Major/Minor")
	}
}

// TestDecodeDriftProvenance: an exec event carries the file that runs
// and who wrote it; only the toolchain flag makes a build artefact.
func TestDecodeDriftProvenance(t *testing.T) {
	var writer [32]int8
	for i, c := range "x86_64-linux-gnu-ld.bfd" {
		writer[i] = int8(c)
	}
	for _, c := range []struct {
		flags    uint32
		artefact bool
	}{{0, false}, {WriterImage, false}, {WriterImage | WriterToolchain, true}} {
		raw := sensorEvent{Kind: 4, Path: cbuf[[256]int8]("./a"), Names: names("a", "tmp", "/"), Writer: writer, WriterFlags: c.flags}
		e, ok := decode(&raw)
		if !ok || e.File != "/tmp/a" || e.Path != "./a" || e.Writer != "x86_64-linux-gnu-ld.bfd" || e.BuildArtefact() != c.artefact {
			t.Errorf("flags %#x: %+v, want /tmp/a written by ld.bfd, build artefact %v", c.flags, e, c.artefact)
		}
	}
	if (Event{Kind: KindDevice, WriterFlags: WriterToolchain}).BuildArtefact() {
		t.Error("only an executed file can be a build artefact")
	}
}

func FuzzTargetOf(f *testing.F) {
	for _, s := range []string{"/proc/sys/kernel/core_pattern", "release_agent", "../../x", "", "/proc/sysrq-trigger"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if tg, ok := targetOf(p); ok && tg == "" {
			t.Fatalf("%q: ok without a target", p)
		}
	})
}

func TestToolchainNames(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range Toolchain() {
		if n == "" || len(n) > maxToolName || seen[n] {
			t.Errorf("toolchain name %q: empty, longer than %d bytes or repeated", n, maxToolName)
		}
		seen[n] = true
	}
}
