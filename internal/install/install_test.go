package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newInstaller(t *testing.T) *Installer {
	t.Helper()
	return &Installer{Root: t.TempDir(), Now: func() time.Time { return time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC) }}
}

func ops(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.Op)+" "+c.Path)
	}
	return out
}

func read(t *testing.T, in *Installer, p string) string {
	t.Helper()
	data, err := os.ReadFile(in.path(p))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestInstallIsIdempotentAndReversible(t *testing.T) {
	in := newInstaller(t)
	// An operator's own file, which install must back up, not clobber.
	if err := os.MkdirAll(in.path("/etc/containerd/conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in.path("/etc/containerd/conf.d/ward.toml"), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []File{
		{Path: "/usr/local/bin/ward", Data: []byte("binary"), Mode: 0o755},
		{Path: "/etc/ward/policy.yaml", Data: []byte("policy"), Mode: 0o644, Keep: true},
		{Path: "/etc/containerd/conf.d/ward.toml", Data: []byte("drop-in"), Mode: 0o644},
	}
	plan, err := in.Plan(files)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create /usr/local/bin/ward", "create /etc/ward/policy.yaml", "backup-and-replace /etc/containerd/conf.d/ward.toml"}
	if strings.Join(ops(plan), "|") != strings.Join(want, "|") {
		t.Fatalf("plan %v, want %v", ops(plan), want)
	}
	if _, err := os.Stat(in.path("/usr/local/bin/ward")); !os.IsNotExist(err) {
		t.Fatal("Plan wrote a file")
	}
	if _, err := in.Apply(files); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(in.path("/usr/local/bin/ward")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("binary: %v %v", fi, err)
	}
	backup := "/etc/containerd/conf.d/ward.toml.ward-backup-20261128T040000Z"
	if read(t, in, backup) != "# mine\n" {
		t.Fatal("the operator's file was not backed up")
	}
	again, err := in.Apply(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Op != Skip {
			t.Errorf("second install: %v", c)
		}
	}
	// A new version of ward replaces its own files without backups; the
	// operator's edited policy is kept.
	if err := os.WriteFile(in.path("/etc/ward/policy.yaml"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	files[0].Data = []byte("binary v2")
	upgrade, err := in.Apply(files)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ops(upgrade), "|"); got != "replace /usr/local/bin/ward|kept /etc/ward/policy.yaml|unchanged /etc/containerd/conf.d/ward.toml" {
		t.Fatalf("upgrade: %s", got)
	}
	dry, err := in.Uninstall(true)
	if err != nil || len(dry) == 0 || read(t, in, "/usr/local/bin/ward") != "binary v2" {
		t.Fatalf("dry-run uninstall changed something or said nothing: %v %v", dry, err)
	}
	undo, err := in.Uninstall(false)
	if err != nil {
		t.Fatal(err)
	}
	if read(t, in, "/etc/containerd/conf.d/ward.toml") != "# mine\n" {
		t.Error("uninstall did not restore the operator's file")
	}
	if _, err := os.Stat(in.path("/usr/local/bin/ward")); !os.IsNotExist(err) {
		t.Error("uninstall left ward's binary")
	}
	if read(t, in, "/etc/ward/policy.yaml") != "edited" {
		t.Error("uninstall removed a file the operator changed")
	}
	left := false
	for _, c := range undo {
		if c.Op == Leave && c.Path == "/etc/ward/policy.yaml" {
			left = true
		}
	}
	if !left {
		t.Errorf("uninstall did not say it left the edited policy: %v", undo)
	}
	if _, err := os.Stat(in.path(backup)); !os.IsNotExist(err) {
		t.Error("the backup is still there after being restored")
	}
	if _, err := os.Stat(filepath.Join(in.Root, ManifestPath)); err != nil {
		t.Error("the manifest went away while a file it records is still ward's to explain")
	}
}
