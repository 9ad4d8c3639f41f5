package profiles

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/ward-seccomp-baseline.golden.json from the generated profile")

const goldenPath = "testdata/ward-seccomp-baseline.golden.json"

// baselineCaps is the capability set container engines grant by default.
var baselineCaps = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE",
	"CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// allCaps is every capability up to Linux 5.9, as in a privileged container.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func with(caps []string, extra ...string) []string {
	return append(slices.Clone(caps), extra...)
}

var capSets = []struct {
	name string
	caps []string
}{
	{"none", nil},
	{"baseline", baselineCaps},
	{"baseline+SYS_ADMIN", with(baselineCaps, "CAP_SYS_ADMIN")},
	{"all", allCaps},
}

// alwaysDenied are the syscalls the issue requires refused whatever the
// capabilities.
var alwaysDenied = []string{
	"keyctl", "add_key", "request_key", "bpf", "perf_event_open",
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_by_handle_at", "kexec_load", "kexec_file_load", "init_module",
	"finit_module", "delete_module",
}

var mountFamily = []string{
	"mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
	"fsopen", "fsconfig", "fsmount", "fspick",
}

func newGenerator(t testing.TB) *SeccompGenerator {
	t.Helper()
	g, err := NewSeccompGenerator(nil)
	if err != nil {
		t.Fatalf("NewSeccompGenerator: %v", err)
	}
	return g
}

func profile(t testing.TB, g *SeccompGenerator, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	p, err := g.Profile(caps)
	if err != nil {
		t.Fatalf("Profile(%v): %v", caps, err)
	}
	return p
}

// verdict is what a filter does with one syscall invocation.
type verdict struct {
	action specs.LinuxSeccompAction
	errno  uint
}

func (v verdict) String() string {
	if v.action == specs.ActErrno {
		return fmt.Sprintf("%s(%d)", v.action, v.errno)
	}
	return string(v.action)
}

var (
	allow  = verdict{specs.ActAllow, 0}
	eperm  = verdict{specs.ActErrno, uint(unix.EPERM)}
	enosys = verdict{specs.ActErrno, uint(unix.ENOSYS)}
)

func ruleVerdict(r specs.LinuxSyscall) verdict {
	v := verdict{action: r.Action}
	if r.ErrnoRet != nil {
		v.errno = *r.ErrnoRet
	}
	return v
}

// decide evaluates p for syscall name with arguments args the way runc and
// libseccomp do for the rule shapes these profiles use: a rule matches when
// all of its argument comparisons hold, and a syscall nothing matches gets
// the default action. It fails the test when matching rules disagree,
// because libseccomp's answer would then depend on rule order.
func decide(t *testing.T, p *specs.LinuxSeccomp, name string, args [6]uint64) verdict {
	t.Helper()
	def := verdict{action: p.DefaultAction}
	if p.DefaultErrnoRet != nil {
		def.errno = *p.DefaultErrnoRet
	}
	var matched []verdict
	for _, r := range p.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		seen := map[uint]bool{}
		ok := true
		for _, a := range r.Args {
			if seen[a.Index] {
				t.Fatalf("rule %+v compares argument %d twice, which runc turns into separate rules", r, a.Index)
			}
			seen[a.Index] = true
			ok = ok && compare(t, a, args[a.Index])
		}
		if ok && !slices.Contains(matched, ruleVerdict(r)) {
			matched = append(matched, ruleVerdict(r))
		}
	}
	switch len(matched) {
	case 0:
		return def
	case 1:
		return matched[0]
	}
	t.Fatalf("%s%v matches rules with different actions %v", name, args, matched)
	return verdict{}
}

func compare(t *testing.T, a specs.LinuxSeccompArg, v uint64) bool {
	switch a.Op {
	case specs.OpNotEqual:
		return v != a.Value
	case specs.OpLessThan:
		return v < a.Value
	case specs.OpLessEqual:
		return v <= a.Value
	case specs.OpEqualTo:
		return v == a.Value
	case specs.OpGreaterEqual:
		return v >= a.Value
	case specs.OpGreaterThan:
		return v > a.Value
	case specs.OpMaskedEqual:
		return v&a.Value == a.ValueTwo
	}
	t.Fatalf("unknown operator %q", a.Op)
	return false
}

// cloneArgs places clone's flags where the architecture passes them.
func cloneArgs(flags uint64) [6]uint64 {
	var args [6]uint64
	if strings.HasPrefix(runtime.GOARCH, "s390") {
		args[1] = flags
	} else {
		args[0] = flags
	}
	return args
}

func arg0(v uint64) [6]uint64 { return [6]uint64{v} }

func TestProfileDecisions(t *testing.T) {
	const pthreadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS |
		unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
	type call struct {
		name string
		args [6]uint64
	}
	calls := []struct {
		call
		desc string
		// want by capability set name; sets not listed want byDefault.
		byDefault verdict
		want      map[string]verdict
	}{
		{call{"read", arg0(0)}, "read", allow, nil},
		{call{"write", arg0(1)}, "write", allow, nil},
		{call{"execve", arg0(0)}, "execve", allow, nil},
		{call{"exit_group", arg0(0)}, "exit_group", allow, nil},
		{call{"openat", arg0(0)}, "openat", allow, nil},
		{call{"mmap", arg0(0)}, "mmap", allow, nil},
		{call{"futex", arg0(0)}, "futex", allow, nil},
		{call{"socket", arg0(unix.AF_INET)}, "socket(AF_INET)", allow, nil},
		{call{"socket", arg0(unix.AF_UNIX)}, "socket(AF_UNIX)", allow, nil},
		{call{"socket", arg0(unix.AF_VSOCK)}, "socket(AF_VSOCK), refused by moby", eperm, nil},
		{call{"clone", cloneArgs(uint64(unix.SIGCHLD))}, "fork through clone", allow, nil},
		{call{"clone", cloneArgs(pthreadFlags)}, "pthread_create", allow, nil},
		{call{"clone", cloneArgs(unix.CLONE_NEWUSER | uint64(unix.SIGCHLD))}, "clone(CLONE_NEWUSER)", eperm, nil},
		{call{"clone", cloneArgs(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)}, "clone(CLONE_NEWUSER|CLONE_NEWNS)", eperm, nil},
		{call{"clone", cloneArgs(unix.CLONE_NEWNS)}, "clone(CLONE_NEWNS)", eperm,
			map[string]verdict{"baseline+SYS_ADMIN": allow, "all": allow}},
		{call{"clone3", arg0(0)}, "clone3, so libc falls back to clone", enosys, nil},
		{call{"unshare", arg0(unix.CLONE_NEWUSER)}, "unshare(CLONE_NEWUSER)", eperm, nil},
		{call{"unshare", arg0(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)}, "unshare(CLONE_NEWUSER|CLONE_NEWNS)", eperm, nil},
		{call{"unshare", arg0(unix.CLONE_NEWNS)}, "unshare(CLONE_NEWNS)", eperm,
			map[string]verdict{"baseline+SYS_ADMIN": allow, "all": allow}},
		{call{"unshare", arg0(unix.CLONE_FILES)}, "unshare(CLONE_FILES), refused by moby without CAP_SYS_ADMIN", eperm,
			map[string]verdict{"baseline+SYS_ADMIN": allow, "all": allow}},
		{call{"setns", arg0(0)}, "setns", eperm,
			map[string]verdict{"baseline+SYS_ADMIN": allow, "all": allow}},
		{call{"pivot_root", arg0(0)}, "pivot_root, refused by moby", eperm, nil},
		{call{"chroot", arg0(0)}, "chroot", allow, map[string]verdict{"none": eperm}},
		{call{"ptrace", arg0(0)}, "ptrace, moby allows on Linux 4.8+", allow, nil},
	}
	for _, name := range alwaysDenied {
		calls = append(calls, struct {
			call
			desc      string
			byDefault verdict
			want      map[string]verdict
		}{call{name, arg0(0)}, name, eperm, nil})
	}
	for _, name := range mountFamily {
		calls = append(calls, struct {
			call
			desc      string
			byDefault verdict
			want      map[string]verdict
		}{call{name, arg0(0)}, name, eperm, map[string]verdict{"baseline+SYS_ADMIN": allow, "all": allow}})
	}

	g := newGenerator(t)
	for _, set := range capSets {
		p := profile(t, g, set.caps)
		for _, c := range calls {
			t.Run(set.name+"/"+c.desc, func(t *testing.T) {
				want, ok := c.want[set.name]
				if !ok {
					want = c.byDefault
				}
				if got := decide(t, p, c.name, c.args); got != want {
					t.Errorf("got %v, want %v", got, want)
				}
			})
		}
	}
}

// TestProfileShape checks the properties the issue asks for on the rules
// themselves, independent of any particular invocation.
func TestProfileShape(t *testing.T) {
	g := newGenerator(t)
	for _, set := range capSets {
		t.Run(set.name, func(t *testing.T) {
			p := profile(t, g, set.caps)

			switch p.DefaultAction {
			case specs.ActErrno:
				if p.DefaultErrnoRet == nil || *p.DefaultErrnoRet == 0 {
					t.Errorf("default action %s without errno", p.DefaultAction)
				}
			case specs.ActKill, specs.ActKillProcess, specs.ActKillThread:
			default:
				t.Errorf("default action %s, want a deny", p.DefaultAction)
			}
			if IsUnconfined(p) || IsDefaultAllow(p) {
				t.Error("ward's own profile counts as permissive")
			}
			if len(p.Architectures) == 0 {
				t.Error("no architectures: the filter would not cover compat ABIs")
			}

			unconditional := map[string]specs.LinuxSeccompAction{}
			for _, r := range p.Syscalls {
				if r.Action == specs.ActErrno && r.ErrnoRet == nil {
					t.Errorf("deny rule %v without errnoRet", r.Names)
				}
				if len(r.Args) == 0 {
					for _, n := range r.Names {
						unconditional[n] = r.Action
					}
				}
			}
			// An unconditional rule next to a rule with another action for
			// the same syscall is the combination libseccomp cannot express.
			for _, r := range p.Syscalls {
				for _, n := range r.Names {
					if a, ok := unconditional[n]; ok && a != r.Action {
						t.Errorf("%s has an unconditional %s rule and a %s rule", n, a, r.Action)
					}
				}
			}
			for _, n := range append(slices.Clone(alwaysDenied), "clone", "clone3", "unshare") {
				if unconditional[n] == specs.ActAllow {
					t.Errorf("%s is allowed unconditionally", n)
				}
			}
			for _, n := range mountFamily {
				allowed := unconditional[n] == specs.ActAllow
				if want := slices.Contains(set.caps, "CAP_SYS_ADMIN"); allowed != want {
					t.Errorf("%s allowed = %v, want %v", n, allowed, want)
				}
			}

			for _, name := range []string{"clone", "unshare"} {
				idx := uint(0)
				if name == "clone" && strings.HasPrefix(runtime.GOARCH, "s390") {
					idx = 1
				}
				want := specs.LinuxSyscall{
					Names:    []string{name},
					Action:   specs.ActErrno,
					ErrnoRet: ptr(uint(unix.EPERM)),
					Args: []specs.LinuxSeccompArg{{
						Index: idx, Value: unix.CLONE_NEWUSER, ValueTwo: unix.CLONE_NEWUSER, Op: specs.OpMaskedEqual,
					}},
				}
				if !slices.ContainsFunc(p.Syscalls, func(r specs.LinuxSyscall) bool { return reflect.DeepEqual(r, want) }) {
					t.Errorf("no CLONE_NEWUSER deny rule for %s", name)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestProfileNarrowsMoby checks that ward only ever takes permissions away
// from moby's profile: every rule that allows something is matched by a
// moby rule that allows at least as much.
func TestProfileNarrowsMoby(t *testing.T) {
	g := newGenerator(t)
	for _, set := range capSets {
		t.Run(set.name, func(t *testing.T) {
			p := profile(t, g, set.caps)
			moby, err := seccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{
				Capabilities: &specs.LinuxCapabilities{Bounding: set.caps},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if p.DefaultAction != moby.DefaultAction || !reflect.DeepEqual(p.DefaultErrnoRet, moby.DefaultErrnoRet) {
				t.Errorf("default %s, moby's %s", p.DefaultAction, moby.DefaultAction)
			}
			// ward keeps only the native ABI, the first of moby's list.
			if len(p.Architectures) != 1 || len(moby.Architectures) == 0 || p.Architectures[0] != moby.Architectures[0] {
				t.Errorf("architectures %v, want only moby's native %v", p.Architectures, moby.Architectures[:1])
			}
			for _, r := range p.Syscalls {
				if r.Action != specs.ActAllow {
					continue
				}
				for _, n := range r.Names {
					covered := slices.ContainsFunc(moby.Syscalls, func(m specs.LinuxSyscall) bool {
						return m.Action == specs.ActAllow && slices.Contains(m.Names, n) &&
							(len(m.Args) == 0 || reflect.DeepEqual(m.Args, r.Args))
					})
					if !covered {
						t.Errorf("%s %v is allowed, moby does not allow as much", n, r.Args)
					}
				}
			}
		})
	}
}

func TestProfileCache(t *testing.T) {
	g := newGenerator(t)
	a := profile(t, g, baselineCaps)
	reversed := slices.Clone(baselineCaps)
	slices.Reverse(reversed)
	b := profile(t, g, append(reversed, "CAP_CHOWN"))
	irrelevant := profile(t, g, with(baselineCaps, "CAP_NET_RAW", "CAP_NOT_A_CAPABILITY"))
	admin := profile(t, g, with(baselineCaps, "CAP_SYS_ADMIN"))

	if a == b {
		t.Error("callers share the returned struct")
	}
	if !reflect.DeepEqual(a, b) || &a.Syscalls[0] != &b.Syscalls[0] {
		t.Error("same set in another order was not served from the cache")
	}
	if &a.Syscalls[0] != &irrelevant.Syscalls[0] {
		t.Error("capabilities no rule mentions made a new cache entry")
	}
	if reflect.DeepEqual(a, admin) {
		t.Error("CAP_SYS_ADMIN did not change the profile")
	}

	// The caller owns the struct: replacing fields or appending must not
	// reach the cache.
	a.DefaultAction = specs.ActAllow
	a.Syscalls = append(a.Syscalls, specs.LinuxSyscall{Names: []string{"kexec_load"}, Action: specs.ActAllow})
	c := profile(t, g, baselineCaps)
	if !reflect.DeepEqual(b, c) {
		t.Error("a caller's changes to its profile reached the cache")
	}
}

func TestProfileCacheBound(t *testing.T) {
	g := newGenerator(t)
	for k := range uint64(maxCachedSeccompProfiles + 10) {
		g.store(k, &specs.LinuxSeccomp{})
	}
	if n := len(g.cache); n > maxCachedSeccompProfiles {
		t.Errorf("cache holds %d profiles, bound is %d", n, maxCachedSeccompProfiles)
	}
	// Past the bound profiles are still returned, just not kept.
	p := profile(t, g, allCaps)
	if p.DefaultAction == "" {
		t.Error("no profile past the cache bound")
	}
}

func TestProfileConcurrent(t *testing.T) {
	ref := newGenerator(t)
	want := make([]*specs.LinuxSeccomp, len(capSets))
	for i, set := range capSets {
		want[i] = profile(t, ref, set.caps)
	}

	g := newGenerator(t)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				k := (w + i) % len(capSets)
				p, err := g.Profile(capSets[k].caps)
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(p, want[k]) {
					t.Errorf("%s: profile differs from a sequential generator's", capSets[k].name)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestOverlayValidation(t *testing.T) {
	const valid = `{"profile": "ward-default/1", "syscalls": [RULE]}`
	tests := []struct {
		name, overlay, wantErr string
	}{
		{"valid", `{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}`, ""},
		{"valid masked", `{"comment": "c", "names": ["unshare"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 6, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}], "includes": {"caps": ["CAP_SYS_ADMIN"]}}`, ""},
		{"unknown field", `{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM", "priority": 1}`, "unknown field"},
		{"no comment", `{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}`, "no comment"},
		{"no names", `{"comment": "c", "names": [], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}`, "names no syscall"},
		{"deprecated name", `{"comment": "c", "name": "keyctl", "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}`, "deprecated"},
		{"numeric errno", `{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}`, "architecture-specific"},
		{"deny without errno", `{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}`, "needs an errno"},
		{"unknown errno", `{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EACCES"}`, "needs an errno"},
		{"allow with errno", `{"comment": "c", "names": ["read"], "action": "SCMP_ACT_ALLOW", "errno": "EPERM"}`, "errno on an allow"},
		{"other action", `{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_KILL"}`, "want SCMP_ACT_ALLOW or SCMP_ACT_ERRNO"},
		{"min kernel", `{"comment": "c", "names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}`, "minKernel"},
		{"misspelt cap", `{"comment": "c", "names": ["mount"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["cap_sys_admin"]}}`, "not a CAP_ name"},
		{"masked bits outside mask", `{"comment": "c", "names": ["unshare"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}`, "outside mask"},
		{"argument index", `{"comment": "c", "names": ["unshare"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}`, "argument index"},
		{"unknown operator", `{"comment": "c", "names": ["unshare"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_BETWEEN"}]}`, "unknown operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSeccompGenerator(strings.Replace(valid, "RULE", tt.overlay, 1), nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}

	for name, overlay := range map[string]string{
		"not json":      `{`,
		"wrong profile": `{"profile": "ward-default/0", "syscalls": [{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}]}`,
		"no rules":      `{"profile": "ward-default/1", "syscalls": []}`,
		"trailing data": `{"profile": "ward-default/1", "syscalls": [{"comment": "c", "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}]} {}`,
	} {
		if _, err := newSeccompGenerator(overlay, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestGolden keeps the generated baseline profile in testdata so that a
// change to the overlay or to moby's profile shows up in review.
func TestGolden(t *testing.T) {
	// The profile follows the build's architecture and, through moby's
	// ptrace rule, the host kernel; the golden file is for linux/amd64 on
	// Linux 4.8 or later.
	if runtime.GOARCH != "amd64" {
		t.Skipf("golden profile is for amd64, not %s", runtime.GOARCH)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor); err != nil {
		t.Fatal(err)
	}
	if major < 4 || major == 4 && minor < 8 {
		t.Skipf("golden profile is for Linux 4.8 or later, not %d.%d", major, minor)
	}

	got, err := json.MarshalIndent(profile(t, newGenerator(t), baselineCaps), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/profiles -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("generated profile differs from %s; if the change is intended, run go test ./internal/profiles -update and review the diff", goldenPath)
	}
}

func BenchmarkProfileCached(b *testing.B) {
	g := newGenerator(b)
	profile(b, g, baselineCaps)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Profile(baselineCaps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfileGenerate measures a cache miss, which is why the cache
// exists.
func BenchmarkProfileGenerate(b *testing.B) {
	g := newGenerator(b)
	key := g.key(baselineCaps)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.generate(key); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWarmProfileIsCached: the profile generated at construction is the one
// for the warm set, so a container with that set hits the cache.
func TestWarmProfileIsCached(t *testing.T) {
	warm := []string{"CAP_CHOWN", "CAP_SYS_CHROOT", "CAP_SETUID"}
	g, err := NewSeccompGenerator(warm)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.cache) != 1 {
		t.Fatalf("%d profiles cached at construction, want 1", len(g.cache))
	}
	profile(t, g, []string{"CAP_SETUID", "CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_CHOWN"})
	if len(g.cache) != 1 {
		t.Errorf("the warm set's profile was generated again: %d cached", len(g.cache))
	}
	profile(t, g, nil)
	if len(g.cache) != 2 {
		t.Errorf("an empty set shares the warm set's profile: %d cached (CAP_SYS_CHROOT changes it)", len(g.cache))
	}
}

func TestSeccompInputsDigest(t *testing.T) {
	a, err := SeccompInputsDigest()
	if bi, ok := debug.ReadBuildInfo(); ok && len(bi.Deps) == 0 {
		// go test binaries record no module versions; built binaries do.
		if err == nil {
			t.Fatal("a digest without moby's version")
		}
		t.Skip("test binary without module versions")
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := SeccompInputsDigest(); a != b || len(a) != 64 {
		t.Errorf("digest %q then %q", a, b)
	}
}
