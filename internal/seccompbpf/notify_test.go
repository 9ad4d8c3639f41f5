package seccompbpf

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/alert"
)

// TestCompileNotify checks that the supervisor's filter differs from
// the plain one only where the plain one answers EPERM to a notified
// syscall, and there it notifies: a supervisor answering EPERM makes the
// two indistinguishable to the workload.
func TestCompileNotify(t *testing.T) {
	native, err := Native()
	if err != nil {
		t.Skip(err)
	}
	notify := alert.NotifySyscalls()
	notified := map[uint32]bool{}
	for _, n := range notify {
		if nr, ok := native.Lookup(n); ok {
			notified[nr] = true
		}
	}
	eperm := RetErrno | uint32(unix.EPERM)
	for name, p := range wardProfiles(t) {
		t.Run(name, func(t *testing.T) {
			plain, err := Compile(p, native)
			if err != nil {
				t.Fatal(err)
			}
			withNotify, err := CompileNotify(p, native, notify)
			if err != nil {
				t.Fatal(err)
			}
			if plain.Notifies() || !withNotify.Notifies() {
				t.Fatalf("Notifies: plain %v, notify %v", plain.Notifies(), withNotify.Notifies())
			}
			a, b := newVM(t, plain), newVM(t, withNotify)
			vals := probes(p)
			changed := 0
			for nr := range uint32(1024) {
				for _, v := range vals {
					for i := range 2 {
						c := call{arch: native.Audit, nr: nr}
						c.args[i] = v
						x, y := run(t, a, c), run(t, b, c)
						switch {
						case x == y:
						case x == eperm && y == RetUserNotif && notified[nr]:
							changed++
						default:
							t.Fatalf("nr %d args %#x: plain %#x, notify %#x", nr, c.args, x, y)
						}
					}
				}
			}
			if changed == 0 {
				t.Error("nothing is notified")
			}
			// The calls escapes use are notified, whatever the arguments.
			for _, n := range []string{"mount", "bpf", "init_module", "open_by_handle_at"} {
				nr, _ := native.Lookup(n)
				if got := run(t, b, call{arch: native.Audit, nr: nr}); got != RetUserNotif && !(name == "many" || name == "sys_admin") {
					t.Errorf("%s: %#x, want a notification", n, got)
				}
			}
			// clone3 keeps its ENOSYS (libcs fall back to clone).
			nr, _ := native.Lookup("clone3")
			if got := run(t, b, call{arch: native.Audit, nr: nr}); got != RetErrno|uint32(unix.ENOSYS) {
				t.Errorf("clone3: %#x", got)
			}
		})
	}
	if _, err := CompileNotify(wardProfiles(t)["none"], native, nil); err == nil {
		t.Error("CompileNotify with no syscall accepted")
	}
}
