package seccompbpf

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// call is one seccomp_data.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// run executes p on c in x/net/bpf's VM. The VM loads words big-endian
// from its packet, so c is laid out with each 32-bit word big-endian at
// the offset the kernel's little-endian seccomp_data has it: the program
// then reads the same values the kernel would give it.
func run(t *testing.T, vm *bpf.VM, c call) uint32 {
	t.Helper()
	var b [64]byte
	binary.BigEndian.PutUint32(b[offNr:], c.nr)
	binary.BigEndian.PutUint32(b[offArch:], c.arch)
	for i, a := range c.args {
		binary.BigEndian.PutUint32(b[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[offArgs+8*i+4:], uint32(a>>32))
	}
	out, err := vm.Run(b[:])
	if err != nil {
		t.Fatalf("running filter: %v", err)
	}
	return uint32(out)
}

func newVM(t *testing.T, p prog.Program) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(p.Insns))
	for i, in := range p.Insns {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter has an instruction the disassembler does not know")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("loading filter into the VM: %v", err)
	}
	return vm
}

// reference decides calls as runc 1.4 with libseccomp does for profile
// p on native, read straight from the profile: the bad-arch action for
// another architecture and (x86_64) for x32 numbers, ENOSYS above the
// largest number the profile names, then the rules.
func reference(t *testing.T, p *specs.LinuxSeccomp, native Arch) func(call) uint32 {
	t.Helper()
	def, err := Action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	maxNr := int64(-1)
	byNr := map[uint32][]specs.LinuxSyscall{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if nr, ok := native.Lookup(n); ok {
				maxNr = max(maxNr, int64(nr))
				byNr[nr] = append(byNr[nr], r)
			}
		}
	}
	stub := maxNr > 0 && p.DefaultAction != specs.ActAllow && p.DefaultAction != specs.ActLog &&
		(p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != uint(unix.ENOSYS))
	return func(c call) uint32 {
		if c.arch != native.Audit {
			return RetKillThread
		}
		if native.Audit == AuditX86_64 {
			if stub && c.nr&0x40000000 != 0 || !stub && c.nr >= 0x40000000 {
				return RetKillThread
			}
		}
		if stub && int64(c.nr) > maxNr {
			return RetErrno | uint32(unix.ENOSYS)
		}
		var uncond, matched []uint32
		for _, r := range byNr[c.nr] {
			act, err := Action(r.Action, r.ErrnoRet)
			if err != nil {
				t.Fatal(err)
			}
			if act == def {
				continue
			}
			if len(r.Args) == 0 {
				uncond = append(uncond, act)
				continue
			}
			idx := map[uint]int{}
			for _, a := range r.Args {
				idx[a.Index]++
			}
			split := len(idx) < len(r.Args)
			all, any := true, false
			for _, a := range r.Args {
				if holds(a, c.args[a.Index]) {
					any = true
				} else {
					all = false
				}
			}
			if split && any || !split && all {
				matched = append(matched, act)
			}
		}
		switch {
		case len(uncond) > 0:
			return uncond[0]
		case len(matched) > 0:
			return matched[0]
		}
		return def
	}
}

func holds(a specs.LinuxSeccompArg, v uint64) bool {
	switch a.Op {
	case specs.OpEqualTo:
		return v == a.Value
	case specs.OpNotEqual:
		return v != a.Value
	case specs.OpLessThan:
		return v < a.Value
	case specs.OpLessEqual:
		return v <= a.Value
	case specs.OpGreaterThan:
		return v > a.Value
	case specs.OpGreaterEqual:
		return v >= a.Value
	case specs.OpMaskedEqual:
		return v&a.Value == a.ValueTwo
	}
	panic("operator " + a.Op)
}

// probes are the argument values worth trying against p's conditions:
// each value and its neighbours, the mask's bits one by one, both halves
// of 64 bits.
func probes(p *specs.LinuxSeccomp) []uint64 {
	vals := []uint64{0, 1, ^uint64(0), 1 << 32, 0xffffffff, 0x100000000 | 8}
	for _, r := range p.Syscalls {
		for _, a := range r.Args {
			for _, v := range []uint64{a.Value, a.ValueTwo} {
				vals = append(vals, v, v-1, v+1, v|1<<32, v<<32, ^v)
			}
			for bit := range 64 {
				if a.Value&(1<<bit) != 0 {
					vals = append(vals, a.ValueTwo^(1<<bit))
				}
			}
		}
	}
	slices.Sort(vals)
	return slices.Compact(vals)
}

// differential checks every syscall number (0 to 1023 and the edges of
// the number space), under every audit architecture, and every
// argument-filtered syscall with probes in each argument, for both the
// compiled filter and the reference.
func differential(t *testing.T, p *specs.LinuxSeccomp, native Arch) int {
	t.Helper()
	compiled, err := Compile(p, native)
	if err != nil {
		t.Fatalf("compiling: %v", err)
	}
	vm := newVM(t, compiled)
	ref := reference(t, p, native)
	checked := 0
	check := func(c call) {
		checked++
		got, want := run(t, vm, c), ref(c)
		if got != want {
			t.Errorf("arch %#x nr %d args %#x: filter returns %#x, profile says %#x", c.arch, c.nr, c.args, got, want)
		}
	}
	sweep(native, []*specs.LinuxSeccomp{p}, check)
	return checked
}

// sweep calls check with every syscall number from 0 to 1023 and the
// edges of the number space under five audit architectures, and with each
// argument-filtered syscall of profs, probes in each argument (probes of
// all profs), and several arguments at once for rules that test more than
// one.
func sweep(native Arch, profs []*specs.LinuxSeccomp, check func(call)) {
	var nrs []uint32
	for nr := range uint32(1024) {
		nrs = append(nrs, nr)
	}
	nrs = append(nrs, 0x3fffffff, 0x40000000, 0x40000000+1, 0x40000000+56, 0x40000000+165, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
	for _, arch := range []uint32{AuditX86_64, AuditI386, AuditAArch64, AuditARM, 0} {
		for _, nr := range nrs {
			check(call{arch: arch, nr: nr})
		}
	}
	var vals []uint64
	for _, p := range profs {
		vals = append(vals, probes(p)...)
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	for _, p := range profs {
		for _, r := range p.Syscalls {
			if len(r.Args) == 0 {
				continue
			}
			for _, name := range r.Names {
				nr, ok := native.Lookup(name)
				if !ok {
					continue
				}
				for i := range 6 {
					for _, v := range vals {
						c := call{arch: native.Audit, nr: nr}
						c.args[i] = v
						check(c)
					}
				}
				if !multiArg(r.Args) {
					continue
				}
				for _, v := range vals {
					for _, w := range vals {
						check(call{arch: native.Audit, nr: nr, args: [6]uint64{v, w, v, w, v, w}})
					}
				}
			}
		}
	}
}

func multiArg(args []specs.LinuxSeccompArg) bool {
	for _, a := range args {
		if a.Index != args[0].Index {
			return true
		}
	}
	return false
}

// wardProfiles are ward's generated profiles for the capability sets that
// change it.
func wardProfiles(t *testing.T) map[string]*specs.LinuxSeccomp {
	t.Helper()
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]string{
		"baseline":  {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"},
		"none":      nil,
		"sys_admin": {"CAP_SYS_ADMIN"},
		"many":      {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_DAC_READ_SEARCH"},
	}
	out := make(map[string]*specs.LinuxSeccomp, len(sets))
	for name, caps := range sets {
		p, err := gen.Profile(caps)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

func TestDifferentialWardProfiles(t *testing.T) {
	native, err := Native()
	if err != nil {
		t.Skip(err)
	}
	for name, p := range wardProfiles(t) {
		t.Run(name, func(t *testing.T) {
			n := differential(t, p, native)
			t.Logf("%d calls agree", n)
		})
	}
}

// TestDifferentialAArch64 compiles ward's profile for arm64 (its names,
// arm64's numbers and audit architecture).
func TestDifferentialAArch64(t *testing.T) {
	p := *wardProfiles(t)["baseline"]
	p.Architectures = []specs.Arch{"SCMP_ARCH_AARCH64"}
	differential(t, &p, AArch64())
}

func ptr(u uint) *uint { return &u }

// defaultAction is a profile's default, with or without runc's stub.
type defaultAction struct {
	name     string
	def      specs.LinuxSeccompAction
	errnoRet *uint
}

func defaultActions() []defaultAction {
	return []defaultAction{
		{"errno EPERM", specs.ActErrno, nil},
		{"errno ENOSYS (no stub)", specs.ActErrno, ptr(uint(unix.ENOSYS))},
		{"kill", specs.ActKillThread, nil},
		{"allow (no stub)", specs.ActAllow, nil},
		{"log (no stub)", specs.ActLog, nil},
	}
}

// TestDifferentialOperators covers what ward's profile does not use:
// every operator, conditions on two arguments, two conditions on one
// argument (runc splits them), 64-bit values, and defaults without the
// ENOSYS stub.
func TestDifferentialOperators(t *testing.T) {
	rules := []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActAllow},
		{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: ptr(5)},
		{Names: []string{"openat"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Op: specs.OpGreaterThan, Value: 0x1_0000_0005}}},
		{Names: []string{"close"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpGreaterEqual, Value: 3}, {Index: 1, Op: specs.OpLessThan, Value: 0x2_0000_0000}}},
		{Names: []string{"dup"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpLessEqual, Value: 0xffff_ffff}}},
		{Names: []string{"dup2"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpNotEqual, Value: 0x7_0000_0001}}},
		{Names: []string{"fcntl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 1}, {Index: 1, Op: specs.OpEqualTo, Value: 2}}},
		{Names: []string{"mmap"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 2, Op: specs.OpMaskedEqual, Value: 0xff00_0000_0004, ValueTwo: 0x0100_0000_0004}}},
		{Names: []string{"mmap"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 3, Op: specs.OpEqualTo, Value: 9}}},
		{Names: []string{"getpid", "no_such_syscall"}, Action: specs.ActTrap},
		{Names: []string{"getppid"}, Action: specs.ActLog},
		{Names: []string{"brk"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 4}}},
		{Names: []string{"brk"}, Action: specs.ActAllow},
	}
	for _, tc := range defaultActions() {
		t.Run(tc.name, func(t *testing.T) {
			native := X86_64()
			p := &specs.LinuxSeccomp{DefaultAction: tc.def, DefaultErrnoRet: tc.errnoRet, Architectures: []specs.Arch{"SCMP_ARCH_X86_64"}, Syscalls: rules}
			if tc.def == specs.ActAllow {
				// An allow rule under an allow default is skipped; keep
				// one rule that differs.
				p.Syscalls = append(slices.Clone(rules), specs.LinuxSyscall{Names: []string{"kill"}, Action: specs.ActErrno})
			}
			differential(t, p, native)
			arm := *p
			arm.Architectures = []specs.Arch{"SCMP_ARCH_AARCH64"}
			differential(t, &arm, AArch64())
		})
	}
}

// TestWardProfileFacts pins the answers that matter, independently of the
// reference: runc's ENOSYS for newer syscalls and clone3, EPERM for user
// namespaces, the bad-arch kill for 32-bit ABIs.
func TestWardProfileFacts(t *testing.T) {
	p := wardProfiles(t)["baseline"]
	native := X86_64()
	if p.Architectures[0] != "SCMP_ARCH_X86_64" {
		t.Skip("facts are for amd64")
	}
	compiled, err := Compile(p, native)
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, compiled)
	eperm, enosys := RetErrno|uint32(unix.EPERM), RetErrno|uint32(unix.ENOSYS)
	for _, tc := range []struct {
		what string
		c    call
		want uint32
	}{
		{"read", call{nr: unix.SYS_READ}, RetAllow},
		{"clone of a thread", call{nr: unix.SYS_CLONE, args: [6]uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD}}, RetAllow},
		{"clone with CLONE_NEWUSER", call{nr: unix.SYS_CLONE, args: [6]uint64{unix.CLONE_NEWUSER}}, eperm},
		{"unshare(CLONE_NEWUSER)", call{nr: unix.SYS_UNSHARE, args: [6]uint64{unix.CLONE_NEWUSER}}, eperm},
		{"clone3", call{nr: unix.SYS_CLONE3}, enosys},
		{"keyctl", call{nr: unix.SYS_KEYCTL}, eperm},
		{"bpf", call{nr: unix.SYS_BPF}, eperm},
		{"mount without CAP_SYS_ADMIN", call{nr: unix.SYS_MOUNT}, eperm},
		{"personality(0xffffffff)", call{nr: unix.SYS_PERSONALITY, args: [6]uint64{0xffffffff}}, RetAllow},
		{"personality(READ_IMPLIES_EXEC)", call{nr: unix.SYS_PERSONALITY, args: [6]uint64{0x0400000}}, eperm},
		{"personality with high bits", call{nr: unix.SYS_PERSONALITY, args: [6]uint64{1<<32 | 8}}, eperm},
		{"socket(AF_INET)", call{nr: unix.SYS_SOCKET, args: [6]uint64{unix.AF_INET}}, RetAllow},
		{"socket(AF_NETLINK)", call{nr: unix.SYS_SOCKET, args: [6]uint64{unix.AF_NETLINK}}, RetAllow},
		{"socket(AF_VSOCK)", call{nr: unix.SYS_SOCKET, args: [6]uint64{unix.AF_VSOCK}}, eperm},
		{"a syscall newer than the profile", call{nr: 1000}, enosys},
		{"x32 read", call{nr: 0x40000000}, RetKillThread},
		{"negative number", call{nr: 0xffffffff}, RetKillThread},
	} {
		tc.c.arch = AuditX86_64
		if got := run(t, vm, tc.c); got != tc.want {
			t.Errorf("%s: filter returns %#x, want %#x", tc.what, got, tc.want)
		}
	}
	if got := run(t, vm, call{arch: AuditI386, nr: 3}); got != RetKillThread {
		t.Errorf("i386 read: filter returns %#x, want kill", got)
	}
}

// TestDifferentialOnlySyscallZero: runc builds no ENOSYS stub when the
// largest number the profile names is 0.
func TestDifferentialOnlySyscallZero(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_X86_64"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	differential(t, p, X86_64())
}

func TestCompileRefuses(t *testing.T) {
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_X86_64"},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	}
	for name, mutate := range map[string]func(p *specs.LinuxSeccomp){
		"compat arch":   func(p *specs.LinuxSeccomp) { p.Architectures = append(p.Architectures, "SCMP_ARCH_X86") },
		"flags":         func(p *specs.LinuxSeccomp) { p.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG"} },
		"listener":      func(p *specs.LinuxSeccomp) { p.ListenerPath = "/run/x.sock" },
		"notify":        func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action = specs.ActNotify },
		"trace default": func(p *specs.LinuxSeccomp) { p.DefaultAction = specs.ActTrace },
		"mixed actions": func(p *specs.LinuxSeccomp) {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActLog})
		},
		"unknown op": func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args = []specs.LinuxSeccompArg{{Op: "SCMP_CMP_XX"}} },
	} {
		p := base()
		mutate(p)
		if _, err := Compile(p, X86_64()); err == nil {
			t.Errorf("%s: compiled", name)
		} else if name != "mixed actions" && name != "unknown op" && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v does not wrap ErrUnsupported", name, err)
		}
	}
	if _, err := Compile(base(), X86_64()); err != nil {
		t.Fatal(err)
	}
}
