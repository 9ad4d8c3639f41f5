// Package prog is a compiled seccomp filter: its file format, checked on
// load, and its installation. It is what ward-init links (package
// seccompbpf, which compiles profiles, carries syscall tables a launcher
// should not pay for at every start).
package prog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	goruntime "runtime"
)

// MaxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MaxInsns = 4096

// magic starts every filter file; the digit is the format's version.
// Format 1 (ward's baseline before workload profiles were compiled) is
// still read: a running container keeps the file it was created with.
const (
	magic1 = "wardbpf1"
	magic  = "wardbpf2"
)

// headerSize is the magic, the audit architecture, the instruction count,
// (format 2) the install flags and the workload program's offset, and the
// CRC-32 of the instructions. The checksum catches a damaged file; the
// file's integrity against tampering comes from where it lives (a
// root-owned directory on the host, bind-mounted read-only).
const (
	headerSize1 = 8 + 4 + 4 + 4
	headerSize  = 8 + 4 + 4 + 4 + 4 + 4
)

// MaxFileSize bounds a filter file.
const MaxFileSize = headerSize + 8*MaxInsns

// Flags a program may ask to be installed with (linux/seccomp.h): the
// ones a workload's profile may carry that mean something for a filter
// without a listener. Install adds TSYNC itself.
const (
	FlagLog       = 1 << 1 // SECCOMP_FILTER_FLAG_LOG
	FlagSpecAllow = 1 << 2 // SECCOMP_FILTER_FLAG_SPEC_ALLOW
	allowedFlags  = FlagLog | FlagSpecAllow
)

// NativeAudit is the AUDIT_ARCH_ value of the architecture ward was built
// for, 0 for one it has no compiler for.
func NativeAudit() uint32 {
	switch goruntime.GOARCH {
	case "amd64":
		return 0xc000003e
	case "arm64":
		return 0xc00000b7
	}
	return 0
}

// Insn is one classic BPF instruction, laid out as the kernel's struct
// sock_filter (unix.SockFilter on Linux, which it converts to). It is
// ward's own type so that the file format, and everything that compiles
// or reads filters (`ward explain` and `ward scan` judge specs on
// developers' machines too), builds on every operating system; only
// Install is Linux's.
type Insn struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// The classic BPF opcodes ward's filters use (linux/bpf_common.h; the same
// numbers on every architecture, pinned to x/sys/unix's by a Linux test).
const (
	OpLoadAbsW = 0x20 // BPF_LD | BPF_W | BPF_ABS
	OpJumpA    = 0x05 // BPF_JMP | BPF_JA
	OpJEqK     = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	OpJGtK     = 0x25 // BPF_JMP | BPF_JGT | BPF_K
	OpJGeK     = 0x35 // BPF_JMP | BPF_JGE | BPF_K
	OpJSetK    = 0x45 // BPF_JMP | BPF_JSET | BPF_K
	OpAndK     = 0x54 // BPF_ALU | BPF_AND | BPF_K
	OpRetK     = 0x06 // BPF_RET | BPF_K
	// ClassMask selects an opcode's class; ClassRet is BPF_RET's.
	ClassMask = 0x07
	ClassRet  = 0x06
)

// Program is a compiled filter for one audit architecture.
type Program struct {
	// Audit is the AUDIT_ARCH_ value the program was compiled for.
	Audit uint32
	// Flags are seccomp(2) filter flags the program is installed with
	// (FlagLog, FlagSpecAllow: a workload profile's flags).
	Flags uint32
	// Own, when not zero, marks a workload's filter composed with ward's
	// baseline (seccompbpf.Compose): Insns[Own:] is the workload's own
	// program, unchanged, which ward's supervisor runs to answer a call
	// the composition let through to it as the workload's profile would.
	Own   uint32
	Insns []Insn
}

// Workload is the workload's own program inside a composed one (Own).
func (p Program) Workload() (Program, bool) {
	if p.Own == 0 || int(p.Own) >= len(p.Insns) {
		return Program{}, false
	}
	return Program{Audit: p.Audit, Flags: p.Flags, Insns: p.Insns[p.Own:]}, true
}

// retUserNotif is SECCOMP_RET_USER_NOTIF.
const retUserNotif = 0x7fc00000

// Notifies reports whether p sends some syscall to a listener: it must
// then be installed with SECCOMP_FILTER_FLAG_NEW_LISTENER, without which
// the kernel answers those calls ENOSYS.
func (p Program) Notifies() bool {
	for _, in := range p.Insns {
		if in.Code == OpRetK && in.K&0xffff0000 == retUserNotif {
			return true
		}
	}
	return false
}

// Marshal encodes p as a filter file (little-endian).
func (p Program) Marshal() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	body := make([]byte, 0, 8*len(p.Insns))
	for _, in := range p.Insns {
		body = binary.LittleEndian.AppendUint16(body, in.Code)
		body = append(body, in.Jt, in.Jf)
		body = binary.LittleEndian.AppendUint32(body, in.K)
	}
	out := make([]byte, 0, headerSize+len(body))
	out = append(out, magic...)
	out = binary.LittleEndian.AppendUint32(out, p.Audit)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(p.Insns)))
	out = binary.LittleEndian.AppendUint32(out, p.Flags)
	out = binary.LittleEndian.AppendUint32(out, p.Own)
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	return append(out, body...), nil
}

// Unmarshal decodes a filter file and checks it: format, length,
// checksum, that it was compiled for audit, and that it ends in a return.
// The kernel checks the rest (jumps in bounds, known instructions) when
// the program is installed.
func Unmarshal(b []byte, audit uint32) (Program, error) {
	size, crcAt := headerSize, 24
	switch {
	case len(b) >= headerSize && string(b[:8]) == magic:
	case len(b) >= headerSize1 && string(b[:8]) == magic1:
		size, crcAt = headerSize1, 16
	default:
		return Program{}, errors.New("not a ward seccomp filter file (format 1 or 2)")
	}
	p := Program{Audit: binary.LittleEndian.Uint32(b[8:])}
	n := binary.LittleEndian.Uint32(b[12:])
	if size == headerSize {
		p.Flags, p.Own = binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint32(b[20:])
	}
	body := b[size:]
	if n == 0 || n > MaxInsns || uint64(len(body)) != 8*uint64(n) {
		return Program{}, fmt.Errorf("filter file holds %d bytes for %d instructions", len(body), n)
	}
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[crcAt:]) {
		return Program{}, errors.New("filter file's checksum does not match its instructions")
	}
	if p.Audit != audit {
		return Program{}, fmt.Errorf("filter is for audit architecture %#x, this machine is %#x", p.Audit, audit)
	}
	p.Insns = make([]Insn, n)
	for i := range p.Insns {
		r := body[8*i:]
		p.Insns[i] = Insn{Code: binary.LittleEndian.Uint16(r), Jt: r[2], Jf: r[3], K: binary.LittleEndian.Uint32(r[4:])}
	}
	return p, p.check()
}

func (p Program) check() error {
	if len(p.Insns) == 0 || len(p.Insns) > MaxInsns {
		return fmt.Errorf("filter has %d instructions, want 1 to %d", len(p.Insns), MaxInsns)
	}
	if last := p.Insns[len(p.Insns)-1]; last.Code&ClassMask != ClassRet {
		return errors.New("filter does not end in a return")
	}
	if p.Flags&^allowedFlags != 0 {
		return fmt.Errorf("filter asks for seccomp flags %#x, ward installs only LOG and SPEC_ALLOW", p.Flags)
	}
	if p.Own >= uint32(len(p.Insns)) {
		return fmt.Errorf("filter's workload program starts at %d of %d instructions", p.Own, len(p.Insns))
	}
	return nil
}
