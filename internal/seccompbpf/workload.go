package seccompbpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"

	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// A workload's own profile (CRI RuntimeDefault, Localhost, Docker's and
// Podman's defaults) is compiled here too, so that runc does no seccomp
// work at start (issue 17), and composed with ward's baseline, so that
// the profile's refusals no longer hide escape attempts from ward's
// supervisor (issue 16): the kernel runs every filter and the strictest
// action wins, and ERRNO is stricter than USER_NOTIF.
//
// The composed filter answers ALLOW where the baseline notifies (unless
// the profile kills or traps: those stay the kernel's), and the profile's
// own answer everywhere else. The kernel then returns the baseline's
// USER_NOTIF for those calls, and the supervisor answers with the
// profile's verdict, which it computes by running the profile's program
// (kept verbatim at the composed program's tail) on the notification's
// seccomp_data, when the profile refuses the call, and with ward's rule
// otherwise (Answer). The workload sees exactly the answers it saw under
// the two filters, and ward sees every attempt.

// compatArches are the architectures a profile may list beside the
// native one, which ward's baseline kills (it lists only the native ABI):
// under the baseline, what the profile says for them never decides.
var compatArches = map[uint32][]string{
	AuditX86_64:  {"SCMP_ARCH_X86", "SCMP_ARCH_X32"},
	AuditAArch64: {"SCMP_ARCH_ARM"},
}

// workloadFlags are the OCI flags runc 1.4 knows, as Program flags. TSYNC
// means nothing to a filter installed before execve (Install always
// synchronizes).
var workloadFlags = map[specs.LinuxSeccompFlag]uint32{
	"SECCOMP_FILTER_FLAG_TSYNC":     0,
	specs.LinuxSeccompFlagLog:       prog.FlagLog,
	specs.LinuxSeccompFlagSpecAllow: prog.FlagSpecAllow,
}

// CompileWorkload compiles a workload's own profile for installation
// beside ward's baseline (Compose), and only there: the calls of an
// architecture other than native, and x32 calls, which the baseline kills
// (KILL_THREAD), are killed here too, whatever the profile says of them.
// A profile that kills processes and lists those architectures is refused
// (the baseline would turn its KILL_PROCESS into KILL_THREAD), as is
// anything Compile refuses. Runc's meaning of the flags is kept: TSYNC is
// implied, LOG and SPEC_ALLOW are installed with the filter; any other
// flag is refused.
func CompileWorkload(p *specs.LinuxSeccomp, native Arch) (prog.Program, error) {
	if p == nil {
		return prog.Program{}, errors.New("no profile")
	}
	var flags uint32
	for _, f := range p.Flags {
		v, ok := workloadFlags[f]
		if !ok {
			return prog.Program{}, fmt.Errorf("flag %s: %w", f, ErrUnsupported)
		}
		flags |= v
	}
	compat, hasNative := false, len(p.Architectures) == 0
	for _, a := range p.Architectures {
		switch {
		case string(a) == native.Name:
			hasNative = true
		case slices.Contains(compatArches[native.Audit], string(a)):
			compat = true
		default:
			return prog.Program{}, fmt.Errorf("architecture %s beside %s: %w", a, native.Name, ErrUnsupported)
		}
	}
	if !hasNative {
		return prog.Program{}, fmt.Errorf("profile does not list %s: %w", native.Name, ErrUnsupported)
	}
	if compat && killsProcess(p) {
		return prog.Program{}, fmt.Errorf("SCMP_ACT_KILL_PROCESS with compat architectures: %w", ErrUnsupported)
	}
	q := *p
	q.Flags, q.Architectures = nil, []specs.Arch{specs.Arch(native.Name)}
	out, err := compile(&q, native, nil)
	if err != nil {
		return prog.Program{}, err
	}
	out.Flags = flags
	return out, nil
}

func killsProcess(p *specs.LinuxSeccomp) bool {
	if p.DefaultAction == specs.ActKillProcess {
		return true
	}
	return slices.ContainsFunc(p.Syscalls, func(r specs.LinuxSyscall) bool { return r.Action == specs.ActKillProcess })
}

// Compose returns own rewritten for installation beside base (ward's
// baseline): base's program runs first, and where it would return
// USER_NOTIF the result is ALLOW unless own kills or traps, and own's
// answer everywhere else. own is kept verbatim at the tail (Program.Own)
// for the supervisor (Evaluate). A base that notifies nothing leaves own
// as it is. Both must be ward's compiled programs: constant returns, and
// own only 32-bit loads from seccomp_data (checked).
//
// The composed filter must be installed before base: for two ERRNO
// answers the kernel keeps the newer filter's errno, which is base's, as
// it was when runc installed the profile before ward-init the baseline.
func Compose(base, own prog.Program) (prog.Program, error) {
	if base.Audit != own.Audit {
		return prog.Program{}, fmt.Errorf("composing seccomp filters: baseline is for %#x, the profile for %#x", base.Audit, own.Audit)
	}
	if err := checkOwn(own); err != nil {
		return prog.Program{}, fmt.Errorf("composing seccomp filters: the profile's program: %w", err)
	}
	for i, in := range base.Insns {
		if in.Code&prog.ClassMask == prog.ClassRet && in.Code != prog.OpRetK {
			return prog.Program{}, fmt.Errorf("composing seccomp filters: baseline instruction %d returns a register", i)
		}
	}
	if !base.Notifies() {
		return own, nil
	}
	nb, nw := len(base.Insns), len(own.Insns)
	if n := nb + 2*nw; n > prog.MaxInsns {
		// runc's libseccomp program for the profile alone may fit.
		return prog.Program{}, fmt.Errorf("composing seccomp filters: %d instructions, the kernel takes %d: %w", n, prog.MaxInsns, ErrUnsupported)
	}
	out := prog.Program{Audit: own.Audit, Flags: own.Flags, Own: uint32(nb + nw), Insns: make([]prog.Insn, 0, nb+2*nw)}
	for i, in := range base.Insns {
		if in.Code != prog.OpRetK {
			out.Insns = append(out.Insns, in)
			continue
		}
		// A long jump (32-bit offset): no 255-instruction limit.
		to := nb + nw // own's answer
		if in.K&retActionFull == RetUserNotif {
			to = nb // own's answer, but only if it kills or traps
		}
		out.Insns = append(out.Insns, prog.Insn{Code: prog.OpJumpA, K: uint32(to - i - 1)})
	}
	for _, in := range own.Insns {
		if in.Code == prog.OpRetK && !Stricter(in.K, RetErrno) {
			in.K = RetAllow
		}
		out.Insns = append(out.Insns, in)
	}
	out.Insns = append(out.Insns, own.Insns...)
	return out, nil
}

// retActionFull is SECCOMP_RET_ACTION_FULL.
const retActionFull = 0xffff0000

// Stricter reports whether the kernel prefers action a to b (linux
// seccomp_run_filters: the lowest action as a signed number wins).
func Stricter(a, b uint32) bool { return int32(a&retActionFull) < int32(b&retActionFull) }

// checkOwn accepts the instructions this package's compiler emits, so
// that a composed program's tail runs the same in Evaluate's VM as in the
// kernel (and jumping into it from base needs no register state).
func checkOwn(p prog.Program) error {
	for i, in := range p.Insns {
		switch in.Code {
		case prog.OpLoadAbsW:
			if in.K%4 != 0 || in.K >= seccompDataSize {
				return fmt.Errorf("instruction %d loads offset %d", i, in.K)
			}
		case prog.OpJumpA, prog.OpJEqK, prog.OpJGtK,
			prog.OpJGeK, prog.OpJSetK,
			prog.OpAndK, prog.OpRetK:
		default:
			return fmt.Errorf("instruction %d has opcode %#x, which ward's compiler does not emit", i, in.Code)
		}
	}
	return nil
}

// seccompDataSize is sizeof(struct seccomp_data).
const seccompDataSize = 64

// Data is struct seccomp_data, as a notification carries it.
type Data struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// Evaluator runs a workload's program in a classic-BPF VM, as the kernel
// would on the same seccomp_data. It is safe for concurrent use.
type Evaluator struct{ vm *bpf.VM }

// NewEvaluator prepares p (a workload's own program, Program.Workload).
func NewEvaluator(p prog.Program) (*Evaluator, error) {
	if err := checkOwn(p); err != nil {
		return nil, fmt.Errorf("loading the workload's seccomp program: %w", err)
	}
	raw := make([]bpf.RawInstruction, len(p.Insns))
	for i, in := range p.Insns {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, errors.New("loading the workload's seccomp program: an instruction the VM does not know")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return nil, fmt.Errorf("loading the workload's seccomp program: %w", err)
	}
	return &Evaluator{vm: vm}, nil
}

// Evaluate returns the program's answer for d. The VM loads words
// big-endian from its packet; seccomp_data is read in native
// (little-endian) 32-bit words, so each word is laid out big-endian at its
// offset, and the program (checkOwn: aligned 32-bit loads only) reads the
// values the kernel would give it.
func (e *Evaluator) Evaluate(d Data) (uint32, error) {
	var b [seccompDataSize]byte
	binary.BigEndian.PutUint32(b[offNr:], uint32(d.Nr))
	binary.BigEndian.PutUint32(b[offArch:], d.Arch)
	binary.BigEndian.PutUint32(b[8:], uint32(d.IP))
	binary.BigEndian.PutUint32(b[12:], uint32(d.IP>>32))
	for i, a := range d.Args {
		binary.BigEndian.PutUint32(b[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[offArgs+8*i+4:], uint32(a>>32))
	}
	out, err := e.vm.Run(b[:])
	if err != nil {
		return 0, fmt.Errorf("running the workload's seccomp program: %w", err)
	}
	return uint32(out), nil
}

// Answer is the answer to a call ward's baseline notified: the workload's
// own verdict (own) when its profile refuses the call with an errno, else
// ward's (rule). It is what the two filters, installed separately, would
// have answered, with ward's supervisor deciding where the baseline's
// USER_NOTIF won. A verdict stricter than ERRNO (KILL, TRAP) never reaches
// the supervisor: the composed filter leaves it to the kernel. Were one to
// come, it is refused with EPERM: a listener can neither kill a thread nor
// trap a call as the kernel does, and must not let it run.
func Answer(own, rule uint32) uint32 {
	switch {
	case own&retActionFull == RetErrno:
		return own
	case Stricter(own, RetErrno):
		return RetErrno | errnoEPERM
	}
	return rule
}
