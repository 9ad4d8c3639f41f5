package backend

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReleaseRunscRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	root := t.TempDir()
	target := filepath.Join(root, runscNullNetns)
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Two stacked mounts, as concurrent runsc creates can leave.
	for i := 0; i < 2; i++ {
		if err := unix.Mount("/proc/self/ns/net", target, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
	}
	t.Cleanup(func() {
		for unix.Unmount(target, unix.MNT_DETACH) == nil {
		}
	})
	state := filepath.Join(root, "c1_sandbox:c1.state")
	if err := os.WriteFile(state, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if released, err := ReleaseRunscRoot(root); err != nil || released {
		t.Fatalf("with a live container: released=%v err=%v, want nothing released", released, err)
	}
	os.Remove(state)
	if released, err := ReleaseRunscRoot(root); err != nil || !released {
		t.Fatalf("after the last container: released=%v err=%v, want released", released, err)
	}
	if err := unix.Unmount(target, 0); err == nil {
		t.Fatal("a mount was still on null-netns after release")
	}
	if released, err := ReleaseRunscRoot(root); err != nil || released {
		t.Fatalf("nothing mounted: released=%v err=%v", released, err)
	}
}

func TestReleaseRunscRootMissingRoot(t *testing.T) {
	if released, err := ReleaseRunscRoot(filepath.Join(t.TempDir(), "absent")); err != nil || released {
		t.Fatalf("missing root: released=%v err=%v", released, err)
	}
}
