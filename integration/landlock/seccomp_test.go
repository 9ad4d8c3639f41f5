package landlock_test

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/landlock"
)

// seccompScript asks for a user namespace (ward's baseline refuses it with
// EPERM), clone3 (ENOSYS, so libcs fall back to clone) and a syscall
// number newer than any profile (ENOSYS, as runc's stub answers).
const seccompScript = `unshare -U true; echo "unshare=$?"; llprobe syscall 435; llprobe syscall 1000; true`

func hasFilterMount(s *specs.Spec) bool {
	return slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == landlock.SeccompPath })
}

// TestSeccompBaselineFromLauncher: runc gets no seccomp profile and
// ward-init installs ward's compiled baseline, for the container's first
// process and for exec sessions.
func TestSeccompBaselineFromLauncher(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)

	s := spec(rootfs, true, "sh", "-c", seccompScript)
	v := e.harden(t, s, true)
	if s.Linux.Seccomp != nil || !hasFilterMount(s) {
		t.Fatalf("runc's profile %v, filter mounted %v (changes %v)", s.Linux.Seccomp, hasFilterMount(s), v.Changes)
	}
	r := e.run(t, s)
	contains(t, "stdout", r.stdout, "unshare=1")
	contains(t, "stderr", r.stderr, "Operation not permitted")
	contains(t, "stdout", r.stdout, "syscall 435: ENOSYS")
	contains(t, "stdout", r.stdout, "syscall 1000: ENOSYS")

	// Control: the same spec without the filter's file runs unfiltered,
	// so the refusals above are the launcher's filter.
	bare := spec(rootfs, true, "sh", "-c", seccompScript)
	e.harden(t, bare, true)
	bare.Mounts = slices.DeleteFunc(bare.Mounts, func(m specs.Mount) bool { return m.Destination == landlock.SeccompPath })
	r = e.run(t, bare)
	contains(t, "stdout (control)", r.stdout, "unshare=0")
	contains(t, "stdout (control)", r.stdout, "syscall 435: EINVAL")

	// Exec sessions go through ward-init too.
	long := spec(rootfs, true, "sleep", "60")
	lv := e.harden(t, long, true)
	id, _ := e.create(t, long)
	if r := e.runcCmd(t, "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	proc := &specs.Process{Args: []string{"sh", "-c", seccompScript}, Env: []string{"PATH=/usr/local/bin:/bin"}, Cwd: "/"}
	if _, err := e.judge.Process(proc, &lv.Decision, lv.Launched); err != nil {
		t.Fatal(err)
	}
	r = e.execProcess(t, id, proc)
	contains(t, "exec stdout", r.stdout, "unshare=1")
	contains(t, "exec stdout", r.stdout, "syscall 1000: ENOSYS")
}

// TestSeccompOwnProfileFromLauncher: a container's own profile is
// compiled by ward and installed by ward-init with the baseline, for the
// first process and exec sessions; runc gets no profile: both refuse.
func TestSeccompOwnProfileFromLauncher(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)
	script := `mkdir /tmp/d; echo "mkdir=$?"; ` + seccompScript
	own := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_X86_64"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	hasProfileMount := func(s *specs.Spec) bool {
		return slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == landlock.ProfileSeccompPath })
	}
	s := spec(rootfs, true, "sh", "-c", script)
	s.Linux.Seccomp = own
	v := e.harden(t, s, true)
	if s.Linux.Seccomp != nil || !hasFilterMount(s) || !hasProfileMount(s) {
		t.Fatalf("runc's profile %v, baseline %v, own profile mounted %v: %v", s.Linux.Seccomp, hasFilterMount(s), hasProfileMount(s), v.Changes)
	}
	r := e.run(t, s)
	contains(t, "stdout", r.stdout, "mkdir=1")   // the container's own profile
	contains(t, "stdout", r.stdout, "unshare=1") // ward's baseline
	contains(t, "stdout", r.stdout, "syscall 1000: ENOSYS")
	if strings.Contains(r.stderr, "ward-init:") {
		t.Errorf("launcher failed: %s", r.stderr)
	}

	// An exec session gets the same two filters from ward-init.
	long := spec(rootfs, true, "sleep", "60")
	long.Linux.Seccomp = own
	lv := e.harden(t, long, true)
	id, _ := e.create(t, long)
	if r := e.runcCmd(t, "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	proc := &specs.Process{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/local/bin:/bin"}, Cwd: "/"}
	if _, err := e.judge.Process(proc, &lv.Decision, lv.Launched); err != nil {
		t.Fatal(err)
	}
	r = e.execProcess(t, id, proc)
	contains(t, "exec stdout", r.stdout, "mkdir=1")
	contains(t, "exec stdout", r.stdout, "unshare=1")

	// Control: without the profile's file, mkdir runs: the refusal above
	// is the compiled profile's.
	bare := spec(rootfs, true, "sh", "-c", script)
	bare.Linux.Seccomp = own
	e.harden(t, bare, true)
	bare.Mounts = slices.DeleteFunc(bare.Mounts, func(m specs.Mount) bool { return m.Destination == landlock.ProfileSeccompPath })
	r = e.run(t, bare)
	contains(t, "stdout (control)", r.stdout, "mkdir=0")
}
