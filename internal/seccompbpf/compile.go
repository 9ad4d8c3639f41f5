package seccompbpf

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"

	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// Return values of a seccomp filter (linux/seccomp.h).
const (
	RetKillProcess uint32 = 0x80000000
	RetKillThread  uint32 = 0x00000000
	RetTrap        uint32 = 0x00030000
	RetErrno       uint32 = 0x00050000
	RetUserNotif   uint32 = 0x7fc00000
	RetLog         uint32 = 0x7ffc0000
	RetAllow       uint32 = 0x7fff0000
)

// ErrUnsupported is wrapped by Compile's errors for profiles it does not
// compile (another architecture, flags, notify or trace actions); such a
// profile is left to runc.
var ErrUnsupported = errors.New("not supported by ward's seccomp compiler")

// Offsets in struct seccomp_data; args are 64-bit, little-endian on every
// architecture this package compiles for.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Action returns the filter return value for an OCI action; errnoRet
// defaults to EPERM, as runc's does.
func Action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	switch a {
	case specs.ActAllow:
		return RetAllow, nil
	case specs.ActLog:
		return RetLog, nil
	case specs.ActKill, specs.ActKillThread:
		return RetKillThread, nil
	case specs.ActKillProcess:
		return RetKillProcess, nil
	case specs.ActTrap:
		return RetTrap, nil
	case specs.ActErrno:
		e := uint(errnoEPERM)
		if errnoRet != nil {
			e = *errnoRet
		}
		if e > 0xffff {
			return 0, fmt.Errorf("errnoRet %d does not fit in a filter's return value", e)
		}
		return RetErrno | uint32(e), nil
	}
	return 0, fmt.Errorf("action %q: %w", a, ErrUnsupported)
}

// cond is one argument comparison.
type cond struct {
	index    uint
	op       specs.LinuxSeccompOperator
	val, two uint64
}

// ruleSet is one conjunction of conditions and its action.
type ruleSet struct {
	conds  []cond
	action uint32
}

// decision is what a filter does for one syscall number: with uncond,
// action; otherwise the action of the first rule set whose conditions all
// hold, and action (the default) when none does.
type decision struct {
	uncond bool
	action uint32
	sets   []ruleSet
}

// Compile translates p to a filter for the ABI native, the only
// architecture p may list (see the package comment for the semantics). It
// fails with ErrUnsupported for a profile it would not translate
// faithfully.
func Compile(p *specs.LinuxSeccomp, native Arch) (prog.Program, error) {
	return compile(p, native, nil)
}

// CompileNotify is Compile, except that every EPERM the profile answers
// for one of the named syscalls becomes SECCOMP_RET_USER_NOTIF: the call
// is sent to the filter's listener (ward's supervisor), which answers
// EPERM itself by default, so a workload sees exactly what Compile's
// program does. Allowed calls, other errnos (clone3's ENOSYS), numbers
// above the profile's largest (runc's ENOSYS stub) and names this
// architecture lacks stay as they are. The program must be installed with
// SECCOMP_FILTER_FLAG_NEW_LISTENER (prog.Program.Notifies).
func CompileNotify(p *specs.LinuxSeccomp, native Arch, notify []string) (prog.Program, error) {
	if len(notify) == 0 {
		return prog.Program{}, errors.New("no syscall to notify")
	}
	return compile(p, native, notify)
}

func compile(p *specs.LinuxSeccomp, native Arch, notify []string) (prog.Program, error) {
	if p == nil {
		return prog.Program{}, errors.New("no profile")
	}
	if len(p.Flags) > 0 || p.ListenerPath != "" || p.ListenerMetadata != "" {
		return prog.Program{}, fmt.Errorf("flags or a notify listener: %w", ErrUnsupported)
	}
	for _, a := range p.Architectures {
		if string(a) != native.Name {
			return prog.Program{}, fmt.Errorf("architecture %s beside %s: %w", a, native.Name, ErrUnsupported)
		}
	}
	def, err := Action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return prog.Program{}, fmt.Errorf("defaultAction: %w", err)
	}
	table, maxNr, err := decisions(p, native, def)
	if err != nil {
		return prog.Program{}, err
	}
	if len(notify) > 0 {
		if def != RetErrno|errnoEPERM {
			return prog.Program{}, fmt.Errorf("notify needs a profile whose default is EPERM: %w", ErrUnsupported)
		}
		notifyDenials(table, native, notify, def, maxNr)
	}
	// runc builds no stub when the largest number is 0 (a profile naming
	// only read on x86_64), nor for a permissive default or ENOSYS.
	stub := maxNr > 0 && def != RetAllow && def != RetLog &&
		!(p.DefaultErrnoRet != nil && *p.DefaultErrnoRet == errnoENOSYS)

	// Every conditional jump spans at most 255 instructions, so the
	// early returns sit right after their tests.
	var a asm
	known := a.newLabel()
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	a.jumpIf(bpf.JumpEqual, native.Audit, known, noLabel)
	a.emit(bpf.RetConstant{Val: RetKillThread})
	a.bind(known)
	a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
	if native.Audit == AuditX86_64 {
		// runc's stub lets x32 numbers through to libseccomp's filter,
		// which sends every number from X32_SYSCALL_BIT up to the bad-arch
		// action; the stub sends the rest above the profile's largest
		// number to ENOSYS.
		test := bpf.JumpGreaterOrEqual
		if stub {
			test = bpf.JumpBitsSet
		}
		native64 := a.newLabel()
		a.jumpIf(test, x32SyscallBit, noLabel, native64)
		a.emit(bpf.RetConstant{Val: RetKillThread})
		a.bind(native64)
	}
	if stub {
		listed := a.newLabel()
		a.jumpIf(bpf.JumpGreaterThan, uint32(maxNr), noLabel, listed)
		a.emit(bpf.RetConstant{Val: RetErrno | errnoENOSYS})
		a.bind(listed)
	}
	a.tree(segments(table, def), def)
	raw, err := a.assemble()
	if err != nil {
		return prog.Program{}, fmt.Errorf("assembling seccomp filter: %w", err)
	}
	p2 := prog.Program{Audit: native.Audit, Insns: make([]prog.Insn, len(raw))}
	for i, r := range raw {
		p2.Insns[i] = prog.Insn{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return p2, nil
}

// notifyDenials turns each EPERM outcome of the named syscalls into a
// notification: an unconditional deny, a conditional rule's deny, and the
// fallback of a syscall allowed only under conditions (clone without a new
// namespace). Numbers above maxNr are left to the ENOSYS stub.
func notifyDenials(table map[uint32]*decision, native Arch, names []string, deny uint32, maxNr int64) {
	for _, name := range names {
		nr, ok := native.Lookup(name)
		if !ok || int64(nr) > maxNr {
			continue
		}
		d := table[nr]
		if d == nil {
			table[nr] = &decision{uncond: true, action: RetUserNotif}
			continue
		}
		if d.action == deny {
			d.action = RetUserNotif
		}
		for i := range d.sets {
			if d.sets[i].action == deny {
				d.sets[i].action = RetUserNotif
			}
		}
	}
}

// decisions reads p's rules into one decision per syscall number, as
// runc adds them to libseccomp, and returns the largest syscall number
// p names (-1 for none), which runc's ENOSYS stub is built from.
func decisions(p *specs.LinuxSeccomp, native Arch, def uint32) (map[uint32]*decision, int64, error) {
	table := make(map[uint32]*decision)
	maxNr := int64(-1)
	for i, r := range p.Syscalls {
		act, err := Action(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, 0, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		sets, err := ruleSets(r.Args, act)
		if err != nil {
			return nil, 0, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		for _, name := range r.Names {
			nr, ok := native.Lookup(name)
			if !ok {
				continue
			}
			maxNr = max(maxNr, int64(nr))
			if act == def {
				continue
			}
			d := table[nr]
			if d == nil {
				d = &decision{action: def}
				table[nr] = d
			}
			if err := d.add(sets, act); err != nil {
				return nil, 0, fmt.Errorf("syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	return table, maxNr, nil
}

// ruleSets splits a rule's conditions as runc does: when two conditions
// test the same argument, each condition becomes a rule of its own.
func ruleSets(args []specs.LinuxSeccompArg, act uint32) ([]ruleSet, error) {
	if len(args) == 0 {
		return nil, nil
	}
	var seen [6]int
	conds := make([]cond, 0, len(args))
	for j, c := range args {
		if c.Index > 5 {
			return nil, fmt.Errorf("args[%d].index %d: syscalls have 6 arguments", j, c.Index)
		}
		switch c.Op {
		case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
			specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		default:
			return nil, fmt.Errorf("args[%d].op %q: %w", j, c.Op, ErrUnsupported)
		}
		seen[c.Index]++
		conds = append(conds, cond{index: c.Index, op: c.Op, val: c.Value, two: c.ValueTwo})
	}
	if slices.ContainsFunc(seen[:], func(n int) bool { return n > 1 }) {
		sets := make([]ruleSet, len(conds))
		for j, c := range conds {
			sets[j] = ruleSet{conds: []cond{c}, action: act}
		}
		return sets, nil
	}
	return []ruleSet{{conds: conds, action: act}}, nil
}

// add merges a rule into d. An unconditional rule decides alone
// (libseccomp drops conditional rules of the same action under it);
// rules of different actions for one syscall are refused, because
// libseccomp's order between them is not something a profile should rely
// on, and ward's profiles have none.
func (d *decision) add(sets []ruleSet, act uint32) error {
	switch {
	case d.uncond && d.action != act, len(d.sets) > 0 && d.sets[0].action != act:
		return fmt.Errorf("rules with different actions for one syscall: %w", ErrUnsupported)
	case d.uncond:
	case len(sets) == 0:
		d.uncond, d.action, d.sets = true, act, nil
	default:
		d.sets = append(d.sets, sets...)
	}
	return nil
}
