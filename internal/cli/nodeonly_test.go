package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestNodeOnlyOffLinux: off Linux the commands that read or change a node
// fail with the typed error before doing anything; on Linux they are left
// as they are.
func TestNodeOnlyOffLinux(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	c := nodeOnly(env, "darwin", doctorCommand(env))
	c.SetArgs(nil)
	err := c.Execute()
	if st, ok := err.(exitStatus); !ok || int(st) != ExitError {
		t.Fatalf("ward doctor on darwin: %v, want exit status %d", err, ExitError)
	}
	if want := "ward: ward doctor needs Linux (a ward node); this is darwin\n"; errb.String() != want || out.Len() != 0 {
		t.Errorf("stderr %q, stdout %q; want stderr %q and nothing on stdout", errb.String(), out.String(), want)
	}
	linux := doctorCommand(env)
	if nodeOnly(env, "linux", linux).RunE == nil {
		t.Error("nodeOnly took ward doctor's RunE away on linux")
	}
}
