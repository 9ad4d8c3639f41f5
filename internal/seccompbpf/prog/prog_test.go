package prog

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRoundTripAndDamage(t *testing.T) {
	p := Program{Audit: 0xc000003e, Insns: []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0x7fff0000},
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
