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
	c := Defaults()
	c.Runc = runc
	c.Runsc = filepath.Join(dir, "no-runsc")
	rt, err := c.Resolve(policy.Runc, "")
	if err != nil || rt.Path != runc || rt.Shim {
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
	if _, err := c.Resolve("firecracker", ""); err == nil {
		t.Error("an unknown backend resolved")
	}
	c.KataShim = filepath.Join(dir, "containerd-shim-kata-v2")
	if _, err := c.Resolve(policy.Kata, "kata-ci"); !errors.As(err, &missing) || !strings.Contains(err.Error(), "kata-ci") {
		t.Errorf("missing kata shim: %v", err)
	}
}
