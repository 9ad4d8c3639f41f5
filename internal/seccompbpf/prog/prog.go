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

	"golang.org/x/sys/unix"
)

// MaxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MaxInsns = 4096

// magic starts every filter file; the digit is the format's version.
const magic = "wardbpf1"

// headerSize is the magic, the audit architecture, the instruction count
// and the CRC-32 of the instructions. The checksum catches a damaged file;
// the file's integrity against tampering comes from where it lives (a
// root-owned directory on the host, bind-mounted read-only).
const headerSize = 8 + 4 + 4 + 4

// MaxFileSize bounds a filter file.
const MaxFileSize = headerSize + 8*MaxInsns

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

// Program is a compiled filter for one audit architecture.
type Program struct {
	// Audit is the AUDIT_ARCH_ value the program was compiled for.
	Audit uint32
	Insns []unix.SockFilter
}

// retUserNotif is SECCOMP_RET_USER_NOTIF.
const retUserNotif = 0x7fc00000

// Notifies reports whether p sends some syscall to a listener: it must
// then be installed with SECCOMP_FILTER_FLAG_NEW_LISTENER, without which
// the kernel answers those calls ENOSYS.
func (p Program) Notifies() bool {
	for _, in := range p.Insns {
		if in.Code == unix.BPF_RET|unix.BPF_K && in.K&0xffff0000 == retUserNotif {
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
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	return append(out, body...), nil
}

// Unmarshal decodes a filter file and checks it: format, length,
// checksum, that it was compiled for audit, and that it ends in a return.
// The kernel checks the rest (jumps in bounds, known instructions) when
// the program is installed.
func Unmarshal(b []byte, audit uint32) (Program, error) {
	if len(b) < headerSize || string(b[:8]) != magic {
		return Program{}, errors.New("not a ward seccomp filter file (format 1)")
	}
	p := Program{Audit: binary.LittleEndian.Uint32(b[8:])}
	n := binary.LittleEndian.Uint32(b[12:])
	body := b[headerSize:]
	if n == 0 || n > MaxInsns || uint64(len(body)) != 8*uint64(n) {
		return Program{}, fmt.Errorf("filter file holds %d bytes for %d instructions", len(body), n)
	}
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[16:]) {
		return Program{}, errors.New("filter file's checksum does not match its instructions")
	}
	if p.Audit != audit {
		return Program{}, fmt.Errorf("filter is for audit architecture %#x, this machine is %#x", p.Audit, audit)
	}
	p.Insns = make([]unix.SockFilter, n)
	for i := range p.Insns {
		r := body[8*i:]
		p.Insns[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(r), Jt: r[2], Jf: r[3], K: binary.LittleEndian.Uint32(r[4:])}
	}
	return p, p.check()
}

func (p Program) check() error {
	if len(p.Insns) == 0 || len(p.Insns) > MaxInsns {
		return fmt.Errorf("filter has %d instructions, want 1 to %d", len(p.Insns), MaxInsns)
	}
	if last := p.Insns[len(p.Insns)-1]; last.Code&0x07 != unix.BPF_RET {
		return errors.New("filter does not end in a return")
	}
	return nil
}
