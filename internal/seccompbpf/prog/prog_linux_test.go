package prog

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLinuxLayout pins ward's own instruction type and opcodes to the
// kernel's, which Install hands Insns to as they are.
func TestLinuxLayout(t *testing.T) {
	if unsafe.Sizeof(Insn{}) != unsafe.Sizeof(unix.SockFilter{}) || unsafe.Offsetof(Insn{}.K) != unsafe.Offsetof(unix.SockFilter{}.K) {
		t.Fatalf("Insn is %d bytes (K at %d), unix.SockFilter %d (K at %d)", unsafe.Sizeof(Insn{}), unsafe.Offsetof(Insn{}.K),
			unsafe.Sizeof(unix.SockFilter{}), unsafe.Offsetof(unix.SockFilter{}.K))
	}
	for _, c := range []struct {
		name      string
		ours, its uint16
	}{
		{"OpLoadAbsW", OpLoadAbsW, unix.BPF_LD | unix.BPF_W | unix.BPF_ABS},
		{"OpJumpA", OpJumpA, unix.BPF_JMP | unix.BPF_JA},
		{"OpJEqK", OpJEqK, unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K},
		{"OpJGtK", OpJGtK, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K},
		{"OpJGeK", OpJGeK, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K},
		{"OpJSetK", OpJSetK, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K},
		{"OpAndK", OpAndK, unix.BPF_ALU | unix.BPF_AND | unix.BPF_K},
		{"OpRetK", OpRetK, unix.BPF_RET | unix.BPF_K},
		{"ClassRet", ClassRet, unix.BPF_RET},
	} {
		if c.ours != c.its {
			t.Errorf("%s = %#x, the kernel's is %#x", c.name, c.ours, c.its)
		}
	}
}
