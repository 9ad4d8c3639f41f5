package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/policy"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	runc := filepath.Join(dir, "runc")
	if err := os.WriteFile(runc, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Builtin().Merge(map[string]Spec{"runc": {Binary: runc}, "gvisor": {Binary: filepath.Join(dir, "no-runsc")}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.Resolve(policy.Runc, "")
	if err != nil || rt.Path != runc || rt.Shim() {
		t.Fatalf("runc: %+v, %v", rt, err)
	}
	_, err = c.Resolve(policy.GVisor, "sandbox-kernel-surface")
	var missing *MissingError
	if !errors.As(err, &missing) {
		t.Fatalf("missing runsc: %v", err)
	}
	for _, want := range []string{"sandbox-kernel-surface", "no-runsc", "gvisor", "refusing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	var unknown *UnknownError
	if _, err := c.Resolve("firecracker", ""); !errors.As(err, &unknown) {
		t.Errorf("an unknown backend: %v", err)
	}
	c, err = c.Merge(map[string]Spec{"kata": {Binary: filepath.Join(dir, "containerd-shim-kata-v2")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(policy.Kata, "kata-ci"); !errors.As(err, &missing) || !strings.Contains(err.Error(), "kata-ci") {
		t.Errorf("missing kata shim: %v", err)
	}
}

// A new backend is one entry: its kind, binary and properties.
func TestMergeAddsBackend(t *testing.T) {
	tb, err := Builtin().Merge(map[string]Spec{"fakevm": {Kind: OCIRuntime, Binary: "/bin/true", Sandbox: true, Enforces: Enforces{Seccomp: true}}})
	if err != nil {
		t.Fatal(err)
	}
	s := tb["fakevm"]
	if s.Name != "fakevm" || s.Dialect != DialectRunc || s.StateName != "fakevm" || !s.Sandbox {
		t.Errorf("new entry: %+v", s)
	}
	for _, bad := range []map[string]Spec{
		{"Bad": {Kind: OCIRuntime, Binary: "x"}},
		{"nokind": {Binary: "x"}},
		{"nobinary": {Kind: OCIRuntime}},
		{"gvisor": {Kind: ContainerdShim}},
		{"odd": {Kind: OCIRuntime, Binary: "x", Dialect: "crun"}},
	} {
		if _, err := Builtin().Merge(bad); err == nil {
			t.Errorf("%v merged", bad)
		}
	}
	// Built-in properties are facts, not settings.
	if _, err := Builtin().Merge(map[string]Spec{"gvisor": {Enforces: Enforces{Landlock: true}}}); err == nil {
		t.Error("gvisor claimed Landlock")
	}
	tb, _ = Builtin().Merge(map[string]Spec{"gvisor": {Binary: "/x/runsc"}})
	if g := tb["gvisor"]; !g.Sandbox || g.Binary != "/x/runsc" || !g.Runsc() {
		t.Errorf("gvisor after merge: %+v", g)
	}
}
