package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/policy"
)

// composedFile writes ward's baseline composed with a profile that
// refuses mount with EACCES, allows unshare and kills on setns, as the
// store names it, and returns its path.
func composedFile(t *testing.T) string {
	t.Helper()
	native, err := seccompbpf.Native()
	if err != nil {
		t.Skip(err)
	}
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := gen.Profile(nil)
	if err != nil {
		t.Fatal(err)
	}
	base, err := seccompbpf.CompileNotify(bp, native, alert.NotifySyscalls())
	if err != nil {
		t.Fatal(err)
	}
	eacces := uint(unix.EACCES)
	own, err := seccompbpf.CompileWorkload(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: &eacces},
		{Names: []string{"setns"}, Action: specs.ActKillThread},
	}}, native)
	if err != nil {
		t.Fatal(err)
	}
	c, err := seccompbpf.Compose(base, own)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	path := filepath.Join(t.TempDir(), hex.EncodeToString(sum[:])+".bpf")
	if err := os.WriteFile(path, b, 0o444); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVerdict: the container's profile answers where it refuses (its
// errno, even under an alert rule), ward's rule where it allows; a
// profile file that does not match its digest refuses with EPERM.
func TestVerdict(t *testing.T) {
	path := composedFile(t)
	native, _ := seccompbpf.Native()
	nr := func(name string) int32 { n, _ := native.Lookup(name); return int32(n) }
	s := &Supervisor{own: newOwnPrograms()}
	call := func(name string, args ...uint64) *notif {
		n := &notif{ID: 7, Data: seccompData{Nr: nr(name), Arch: native.Audit}}
		copy(n.Data.Args[:], args)
		return n
	}
	cont := notifResp{ID: 7, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	for _, tc := range []struct {
		what    string
		profile string
		n       *notif
		resp    policy.Response
		want    notifResp
		did     string
		fails   bool
	}{
		{"profile refuses, rule alerts", path, call("mount"), policy.RespondAlert, notifResp{ID: 7, Error: -int32(unix.EACCES)}, "deny", false},
		{"profile refuses, rule freezes", path, call("mount"), policy.RespondFreeze, notifResp{ID: 7, Error: -int32(unix.EACCES)}, "freeze", false},
		{"profile allows, rule alerts", path, call("unshare", unix.CLONE_NEWUSER), policy.RespondAlert, cont, "allow", false},
		{"profile allows, rule denies", path, call("unshare", unix.CLONE_NEWUSER), policy.RespondDeny, notifResp{ID: 7, Error: -int32(unix.EPERM)}, "deny", false},
		{"profile kills (the kernel's to do): refused", path, call("setns"), policy.RespondAlert, notifResp{ID: 7, Error: -int32(unix.EPERM)}, "deny", false},
		{"no profile of its own", "", call("mount"), policy.RespondAlert, cont, "allow", false},
		{"an unreadable profile fails closed", path + ".missing", call("unshare"), policy.RespondAlert, notifResp{ID: 7, Error: -int32(unix.EPERM)}, "deny", true},
	} {
		got, did, err := s.verdict(Container{Profile: tc.profile}, tc.n, tc.resp)
		if got != tc.want || did != tc.did || (err != nil) != tc.fails {
			t.Errorf("%s: %+v %q %v, want %+v %q (error %v)", tc.what, got, did, err, tc.want, tc.did, tc.fails)
		}
	}
	// A file whose content no longer matches its name is refused.
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	bad := filepath.Join(t.TempDir(), filepath.Base(path))
	os.WriteFile(bad, b, 0o444)
	if _, err := newOwnPrograms().evaluator(bad); err == nil {
		t.Error("a damaged profile file was accepted")
	}
}
