package backend

import (
	"slices"
	"testing"

	"github.com/ward-runtime/ward/policy"
)

func TestInJoinedNetns(t *testing.T) {
	gvisor := Builtin()[policy.GVisor]
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
		mode  string
	}{
		{"default", []string{"--platform=systrap"}, []string{"--platform=systrap", "--network=host"}, "host"},
		{"no flags", nil, []string{"--network=host"}, "host"},
		{"sandbox named", []string{"--network=sandbox", "--platform=ptrace"}, []string{"--platform=ptrace", "--network=host"}, "host"},
		{"two tokens", []string{"--network", "sandbox", "--debug"}, []string{"--debug", "--network=host"}, "host"},
		{"single dash", []string{"-network=sandbox"}, []string{"--network=host"}, "host"},
		{"operator's none kept", []string{"--network=none", "--platform=systrap"}, []string{"--platform=systrap", "--network=none"}, "none"},
		{"last one counts, as in runsc", []string{"--network=none", "--network=sandbox"}, []string{"--network=host"}, "host"},
		{"already host", []string{"--network=host"}, []string{"--network=host"}, "host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := gvisor.clone()
			s.Flags = tc.flags
			rt := Runtime{Spec: s, Path: "/usr/bin/runsc"}
			got, mode := rt.InJoinedNetns()
			if !slices.Equal(got.Flags, tc.want) || mode != tc.mode {
				t.Errorf("flags %q -> %q (%s), want %q (%s)", tc.flags, got.Flags, mode, tc.want, tc.mode)
			}
			if !slices.Equal(rt.Flags, tc.flags) {
				t.Errorf("the backend's own flags changed to %q", rt.Flags)
			}
		})
	}
	// Another dialect is left alone: its flags mean something else.
	vm := Runtime{Spec: Spec{Name: "fakevm", Kind: OCIRuntime, Dialect: DialectRunc, Sandbox: true, Flags: []string{"--vm"}}}
	if got, mode := vm.InJoinedNetns(); mode != "" || !slices.Equal(got.Flags, []string{"--vm"}) {
		t.Errorf("runc-dialect sandbox: %q mode %q", got.Flags, mode)
	}
}
