package harden

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/landlock"
	"github.com/ward-runtime/ward/policy"
)

func TestLandlockStepIdempotentAndExec(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewLandlockStep(LandlockOptions{Launcher: "/usr/lib/ward/ward-init", Settings: &p.Landlock, ABI: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Process: &specs.Process{Args: []string{"nginx"}, Env: []string{"A=1", landlock.EnvVar + "=forged"}},
		Root: &specs.Root{Readonly: true}, Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind"}}}}
	var rec Record
	if err := st.Apply(s, &rec); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, []string{landlock.LauncherPath, "nginx"}) || len(s.Mounts) != 3 {
		t.Fatalf("args %v mounts %v", s.Process.Args, s.Mounts)
	}
	if !slices.ContainsFunc(rec.Changes, func(c Change) bool { return strings.Contains(c.Detail, "not enforced on this kernel (Landlock ABI 3)") }) {
		t.Errorf("degradation not recorded: %v", rec.Changes)
	}
	var enc string
	for _, kv := range s.Process.Env {
		if v, ok := strings.CutPrefix(kv, landlock.EnvVar+"="); ok {
			enc = v
		}
	}
	rs, err := landlock.Decode(enc)
	if err != nil || !slices.Contains(rs.Paths, landlock.PathRule{Path: "/data", Access: landlock.Read | landlock.Write}) {
		t.Fatalf("ruleset %+v %v", rs, err)
	}
	before := *s
	before.Process = &specs.Process{Args: slices.Clone(s.Process.Args), Env: slices.Clone(s.Process.Env)}
	before.Mounts = slices.Clone(s.Mounts)
	var again Record
	if err := st.Apply(s, &again); err != nil || len(again.Changes) != 0 || !reflect.DeepEqual(before.Mounts, s.Mounts) || !slices.Equal(before.Process.Env, s.Process.Env) {
		t.Fatalf("second apply changed %v (%v)", again.Changes, err)
	}

	s.Mounts = append(s.Mounts, specs.Mount{Destination: landlock.HandoffPath, Type: "bind", Source: "/evil"})
	if err := st.Apply(s, &Record{}); err == nil {
		t.Error("a foreign mount under /.ward was accepted")
	}

	exec := &specs.Process{Args: []string{"sh"}, Env: []string{landlock.EnvVar + "=forged", "B=2"}}
	if err := st.Process(exec, &Record{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(exec.Args, []string{landlock.LauncherPath, "sh"}) || !slices.Equal(exec.Env, []string{"B=2"}) {
		t.Errorf("exec process %v %v", exec.Args, exec.Env)
	}
}
