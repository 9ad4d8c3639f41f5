package judge

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// With a filter directory, real corpus specs leave runc without ward's
// profile (or with their own), get the compiled filter mounted for
// ward-init, and pass the re-check: no seccomp finding is left.
func TestCompiledFilterForLauncher(t *testing.T) {
	if prog.NativeAudit() == 0 {
		t.Skip("no seccomp compiler for this architecture")
	}
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	j, err := New(p, Options{Launcher: "/usr/local/bin/ward-init", FilterDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"../../testdata/corpus/cri-ordinary/container.json",
		"../../testdata/corpus/ctr-run/config.json",
		"../../testdata/corpus/runc-spec/config.json",
	} {
		b := load(t, path)
		own := b.Spec.Linux != nil && b.Spec.Linux.Seccomp != nil && b.Spec.Linux.Seccomp.DefaultAction != ""
		us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
		v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Userns: us})
		if err != nil || v.Action != policy.Harden {
			t.Fatalf("%s: %s, %v", path, v.Action, err)
		}
		if !own && b.Spec.Linux.Seccomp != nil {
			t.Errorf("%s: runc still gets a profile", path)
		}
		var src string
		for _, m := range b.Spec.Mounts {
			if m.Destination == landlock.SeccompPath {
				src = m.Source
			}
		}
		if filepath.Dir(src) != dir {
			t.Fatalf("%s: filter mount source %q", path, src)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := prog.Unmarshal(data, prog.NativeAudit()); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
