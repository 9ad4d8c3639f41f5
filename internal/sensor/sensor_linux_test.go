package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/freezer"
)

// loadForTest loads the sensor, failing (not skipping) on a kernel that
// should run it: ward's CI kernels have BTF, ring buffers and syscall
// tracepoints (docs/sensors.md).
func loadForTest(t *testing.T) *Sensor {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	s, err := Load(Options{MountTracefs: true})
	if err != nil {
		t.Fatalf("loading the sensor on this kernel: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// cgroupWith makes a cgroup v2 directory and returns it with its ID.
func cgroupWith(t *testing.T, name string) (string, uint64) {
	t.Helper()
	h, err := freezer.HostUnified()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.Root, fmt.Sprintf("ward-sensor-test-%d-%s", os.Getpid(), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	id, err := CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// runIn runs script with sh inside the cgroup dir (CLONE_INTO_CGROUP).
func runIn(t *testing.T, dir, script string) {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = sysProcAttrInCgroup(int(fd.Fd()))
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("script: %v: %s", err, out)
	}
}

// collect reads events until none has come for quiet.
func collect(s *Sensor, quiet time.Duration) []Event { return collectEvents(s.Read, quiet) }

// collectEvents calls read until no event has come for quiet.
func collectEvents(read func() (Event, error), quiet time.Duration) []Event {
	ch := make(chan Event, 100)
	go func() {
		for {
			e, err := read()
			if err != nil {
				close(ch)
				return
			}
			ch <- e
		}
	}()
	var out []Event
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-time.After(quiet):
			return out
		}
	}
}

func TestSensorSeesWatchedCgroupOnly(t *testing.T) {
	s := loadForTest(t)
	t.Logf("BPF-LSM: %v", s.LSM)
	watched, id := cgroupWith(t, "watched")
	other, _ := cgroupWith(t, "other")
	if err := s.Watch(id); err != nil {
		t.Fatal(err)
	}
	// Opens for writing that write nothing (>> with no output): the
	// node's core_pattern and sysctls stay as they are.
	script := `exec 3>>/proc/sys/kernel/core_pattern; exec 3>&-
true 4>>/proc/sys/kernel/ward-no-such-sysctl
cp /bin/true ./dropped && ./dropped
cat /dev/null > /dev/null`
	runIn(t, other, script)
	runIn(t, watched, script)
	events := collect(s, 500*time.Millisecond)
	got := map[Target]Event{}
	for _, e := range events {
		t.Logf("%v", e)
		if e.Cgroup != id {
			t.Errorf("event from cgroup %d, not the watched %d: %v", e.Cgroup, id, e)
		}
		got[e.Target] = e
	}
	if e, ok := got[CorePattern]; !ok || e.Failed || e.Path != "/proc/sys/kernel/core_pattern" || e.FS != "proc" || e.Comm != "sh" {
		t.Errorf("core_pattern: %+v", e)
	}
	if e, ok := got[ProcSys]; !ok || !e.Failed || e.Errno == 0 {
		t.Errorf("failed sysctl write: %+v", e)
	}
	if e, ok := got[Drift]; !ok || e.Comm != "dropped" {
		t.Errorf("drift: %+v", e)
	}
	if len(events) != 3 {
		t.Errorf("%d events, want 3", len(events))
	}
	if err := s.Unwatch(id); err != nil {
		t.Fatal(err)
	}
	runIn(t, watched, script)
	if ev := collect(s, 300*time.Millisecond); len(ev) != 0 {
		t.Errorf("events after Unwatch: %v", ev)
	}
}

func TestCgroupID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir, id := cgroupWith(t, "id")
	var st = mustStat(t, dir)
	// On 64-bit kernels a cgroup's ID is its kernfs inode number.
	if id != st {
		t.Errorf("CgroupID %d, inode %d", id, st)
	}
	if _, err := CgroupID(t.TempDir()); err == nil {
		t.Error("a plain directory has a cgroup ID?")
	}
}

func TestReadAfterClose(t *testing.T) {
	s := loadForTest(t)
	done := make(chan error)
	go func() { _, err := s.Read(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Read still blocked after Close")
	}
	_ = strconv.Itoa
}

// TestDriftProvenance runs build-job shapes in a watched cgroup whose
// processes have an overlay root (lower: the node's root filesystem, as
// an image's layers; upper: a tmpfs, as a container's writable layer):
// what the image's linker wrote is a build artefact, what cp or a shell
// wrote is drift, an artefact that another process then writes to is
// drift for good, and a script written in the container runs its
// interpreter (the image's /bin/sh), which is nothing.
func TestDriftProvenance(t *testing.T) {
	s := loadForTest(t)
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("needs a C compiler (cc) on the node")
	}
	dir, id := cgroupWith(t, "provenance")
	if err := s.Watch(id); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	// A private mount namespace: the overlay and its binds vanish with it.
	script := `set -e
mount -t tmpfs tmpfs ` + work + `
mkdir ` + work + `/up ` + work + `/wk ` + work + `/m
mount -t overlay overlay -o lowerdir=/,upperdir=` + work + `/up,workdir=` + work + `/wk ` + work + `/m
mount --rbind /dev ` + work + `/m/dev
exec chroot ` + work + `/m /bin/sh -c '
cd /tmp
printf "int main(){return 0;}" > a.c && cc -o built a.c && ./built
cc -o tampered a.c && dd if=/dev/null of=tampered conv=notrunc 2>/dev/null && ./tampered
cp /bin/true ./copied && ./copied
printf "#!/bin/sh\nexit 0\n" > s.sh && chmod +x s.sh && ./s.sh
'`
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script)
	cmd.SysProcAttr = sysProcAttrInCgroup(int(fd.Fd()))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build script: %v: %s", err, out)
	}
	got := map[string]Event{}
	for _, e := range collect(s, 700*time.Millisecond) {
		t.Logf("%v", e)
		if e.Target == Drift {
			got[e.Comm] = e
		}
	}
	if len(got) != 3 {
		t.Errorf("drift from %d programs, want 3 (built, tampered, copied; not the script)", len(got))
	}
	if e := got["built"]; !e.BuildArtefact() || e.WriterFlags&WriterImage == 0 || !strings.HasSuffix(e.Writer, "ld.bfd") && !strings.HasSuffix(e.Writer, "ld") {
		t.Errorf("what the image's linker built: %+v, want a build artefact written by ld", e)
	}
	if e := got["tampered"]; e.BuildArtefact() || e.Writer != "dd" {
		t.Errorf("a linked binary written to by dd: %+v, want drift written by dd", e)
	}
	if e := got["copied"]; e.BuildArtefact() || e.Writer != "cp" || e.WriterFlags&WriterImage == 0 || e.File != "/tmp/copied" {
		t.Errorf("/bin/true copied by the image's cp: %+v, want drift written by cp at /tmp/copied", e)
	}
}
