package prog

import (
	"strings"
	"testing"
)

func TestRoundTripAndDamage(t *testing.T) {
	p := Program{Audit: 0xc000003e, Insns: []Insn{
		{Code: OpLoadAbsW, K: 4},
		{Code: OpRetK, K: 0x7fff0000},
	}}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b, p.Audit)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Insns) != 2 || got.Insns[1] != p.Insns[1] {
		t.Fatalf("round trip: %+v", got)
	}
	for name, tc := range map[string]struct {
		b     []byte
		audit uint32
		want  string
	}{
		"empty":       {nil, p.Audit, "not a ward seccomp filter"},
		"other magic": {append([]byte("xardbpf1"), b[8:]...), p.Audit, "not a ward seccomp filter"},
		"truncated":   {b[:len(b)-1], p.Audit, "bytes for 2 instructions"},
		"flipped bit": {flip(b, len(b)-1), p.Audit, "checksum"},
		"other arch":  {b, 0x40000003, "audit architecture"},
		"appended":    {append(append([]byte{}, b...), 0), p.Audit, "bytes for 2 instructions"},
	} {
		if _, err := Unmarshal(tc.b, tc.audit); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	if _, err := (Program{Audit: 1, Insns: p.Insns[:1]}).Marshal(); err == nil {
		t.Error("a program without a final return was encoded")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}

// TestFormats: format 2 keeps the flags and the workload program's
// offset; a format 1 file (a container created before) still reads; a
// flag ward does not install or an offset past the end is refused.
func TestFormats(t *testing.T) {
	insns := []Insn{
		{Code: OpJumpA, K: 0},
		{Code: OpRetK, K: 0x7fff0000},
	}
	p := Program{Audit: 0xc000003e, Flags: FlagLog, Own: 1, Insns: insns}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b, p.Audit)
	if err != nil || got.Flags != FlagLog || got.Own != 1 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if w, ok := got.Workload(); !ok || len(w.Insns) != 1 || w.Insns[0] != insns[1] {
		t.Errorf("workload program %+v %v", w, ok)
	}
	// Format 1: no flags, no offset, the checksum at 16.
	v1 := append([]byte("wardbpf1"), b[8:16]...)
	v1 = append(v1, b[24:]...)
	if got, err := Unmarshal(v1, p.Audit); err != nil || got.Flags != 0 || got.Own != 0 || len(got.Insns) != 2 {
		t.Errorf("format 1: %+v %v", got, err)
	}
	for name, bad := range map[string]Program{
		"new listener flag": {Audit: p.Audit, Flags: 1 << 3, Insns: insns},
		"offset past end":   {Audit: p.Audit, Own: 2, Insns: insns},
	} {
		if _, err := bad.Marshal(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}
