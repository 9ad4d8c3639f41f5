package harden

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/landlock"
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
		Root: &specs.Root{Readonly: true}, Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind"}}},
		Annotations: map[string]string{AnnotationLandlock: "wx"}}
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
	launchSession(exec, &Record{})
	if !slices.Equal(exec.Args, []string{landlock.LauncherPath, "sh"}) || !slices.Equal(exec.Env, []string{"B=2"}) {
		t.Errorf("exec process %v %v", exec.Args, exec.Env)
	}
}

// TestLandlockDefaults: the default policy restricts nothing for an
// ordinary container (no domain, so exec sessions can operate the main
// process), scopes abstract sockets wherever the host's network namespace
// may be shared, and lets the annotation opt into wx or its audit.
func TestLandlockDefaults(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewLandlockStep(LandlockOptions{Launcher: "/usr/lib/ward/ward-init", Settings: &p.Landlock, ABI: 7})
	if err != nil {
		t.Fatal(err)
	}
	own := []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}
	joined := []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"}}
	hostNet := policy.Finding{Check: &policy.Check{ID: policy.IDHostNetwork}}
	for _, c := range []struct {
		name         string
		ns           []specs.LinuxNamespace
		in           *policy.Input
		annotation   string
		unrestricted bool
		hostNetwork  bool
		audit        bool
		profile      string
	}{
		{"own network namespace", own, nil, "", true, false, false, "baseline"},
		{"host network", nil, nil, "", false, true, false, "baseline"},
		{"init namespace by path is not trusted", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}, nil, "", false, true, false, "baseline"},
		{"pod app container, pod not on host network", joined, &policy.Input{Pod: &policy.PodContext{}}, "", true, false, false, "baseline"},
		{"pod app container, host-network pod", joined, &policy.Input{Pod: &policy.PodContext{Findings: []policy.Finding{hostNet}}}, "", false, true, false, "baseline"},
		{"joined by path, unknown pod", joined, &policy.Input{}, "", false, true, false, "baseline"},
		{"opt-in wx", own, nil, "wx", false, false, false, "wx"},
		{"audit", own, nil, "wx-audit", true, false, true, "wx-audit"},
		{"audit on host network keeps the scope", nil, nil, "wx-audit", false, true, true, "wx-audit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &specs.Spec{Process: &specs.Process{Args: []string{"make"}}, Root: &specs.Root{}, Linux: &specs.Linux{Namespaces: c.ns}}
			if c.annotation != "" {
				s.Annotations = map[string]string{AnnotationLandlock: c.annotation}
			}
			rec := Record{In: c.in}
			if err := st.Apply(s, &rec); err != nil {
				t.Fatal(err)
			}
			var rs landlock.Ruleset
			for _, kv := range s.Process.Env {
				if v, ok := strings.CutPrefix(kv, landlock.EnvVar+"="); ok {
					if rs, err = landlock.Decode(v); err != nil {
						t.Fatal(err)
					}
				}
			}
			if rs.Profile != c.profile || rs.Enforced().Unrestricted() != c.unrestricted || rs.HostNetwork != c.hostNetwork || rs.Audit != c.audit {
				t.Errorf("ruleset %+v: unrestricted %v", rs, rs.Enforced().Unrestricted())
			}
			drift := slices.ContainsFunc(rec.Changes, func(ch Change) bool { return strings.Contains(ch.Detail, "drift (write, then execute) not refused") })
			if drift != (c.profile != "wx") {
				t.Errorf("drift note %v for %s: %v", drift, c.profile, rec.Changes)
			}
		})
	}
}
