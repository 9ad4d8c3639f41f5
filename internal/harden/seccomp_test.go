package harden

import (
	"fmt"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/policy"
)

// fakeFilters stands in for seccompbpf.Store; a profile with a listener
// path is one its compiler refuses.
type fakeFilters struct{ calls, workloads int }

func (f *fakeFilters) Filter([]string) (string, error) {
	f.calls++
	return "/run/ward/seccomp/abc.bpf", nil
}

func (f *fakeFilters) Workload(p *specs.LinuxSeccomp, base string) (string, error) {
	f.workloads++
	if p.ListenerPath != "" {
		return "", fmt.Errorf("a listener: %w", seccompbpf.ErrUnsupported)
	}
	return "/run/ward/seccomp/own.bpf", nil
}

type fakeProfiles struct{}

func (fakeProfiles) Profile([]string) (*specs.LinuxSeccomp, error) {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}, nil
}

func launcherHardener(t *testing.T, filters FilterSource) *Hardener {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	ll, err := NewLandlockStep(LandlockOptions{Launcher: "/usr/lib/ward/ward-init", Settings: &p.Landlock, ABI: -1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Capabilities: p.Harden.Capabilities, Seccomp: fakeProfiles{}, Filters: filters, Landlock: ll})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func filterMounts(s *specs.Spec) []specs.Mount {
	var out []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination == landlock.SeccompPath {
			out = append(out, m)
		}
	}
	return out
}

func TestLauncherSeccomp(t *testing.T) {
	own := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActAllow}}}
	listener := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/agent.sock", Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActNotify}}}
	for _, tc := range []struct {
		name    string
		seccomp *specs.LinuxSeccomp
		want    *specs.LinuxSeccomp // what runc is left with
		ownFile string              // the compiled profile's mount source
	}{
		{"no profile (kubelet's Unconfined)", nil, nil, ""},
		{"empty profile", &specs.LinuxSeccomp{}, nil, ""},
		{"own profile (RuntimeDefault, Localhost) is compiled by ward, runc gets none", own, nil, "/run/ward/seccomp/own.bpf"},
		{"a profile ward does not compile is kept for runc and stacked on", listener, listener, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFilters{}
			h := launcherHardener(t, f)
			s := &specs.Spec{Process: &specs.Process{Args: []string{"nginx"}}, Linux: &specs.Linux{Seccomp: tc.seccomp}}
			in := &policy.Input{Spec: s}
			if _, err := h.Apply(in, nil); err != nil {
				t.Fatal(err)
			}
			if s.Linux.Seccomp != tc.want {
				t.Errorf("runc's profile %+v, want %+v", s.Linux.Seccomp, tc.want)
			}
			if m := filterMounts(s); len(m) != 1 || m[0].Source != "/run/ward/seccomp/abc.bpf" || !slices.Contains(m[0].Options, "ro") {
				t.Fatalf("filter mounts %+v", m)
			}
			var ownMounts []specs.Mount
			for _, m := range s.Mounts {
				if m.Destination == landlock.ProfileSeccompPath {
					ownMounts = append(ownMounts, m)
				}
			}
			switch {
			case tc.ownFile == "" && len(ownMounts) != 0:
				t.Errorf("profile mounts %+v, want none", ownMounts)
			case tc.ownFile != "" && (len(ownMounts) != 1 || ownMounts[0].Source != tc.ownFile || !slices.Contains(ownMounts[0].Options, "ro")):
				t.Errorf("profile mounts %+v, want one of %s", ownMounts, tc.ownFile)
			}
			if last := s.Mounts[len(s.Mounts)-1].Destination; last != landlock.SeccompPath && last != landlock.ProfileSeccompPath {
				t.Error("the filters are not the last mounts")
			}
			changes, err := h.Apply(in, nil)
			if err != nil || len(changes) != 0 || len(filterMounts(s)) != 1 {
				t.Errorf("second apply: %v, %v", changes, err)
			}
		})
	}
}

func TestLauncherSeccompRefusesForeignFilter(t *testing.T) {
	h := launcherHardener(t, &fakeFilters{})
	for name, mounts := range map[string][]specs.Mount{
		"before ward's directory":        {{Destination: landlock.SeccompPath, Type: "bind", Source: "/run/ward/seccomp/abc.bpf", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}}},
		"another source":                 {{Destination: landlock.SeccompPath + "/", Type: "bind", Source: "/tmp/allow-all.bpf", Options: []string{"bind", "ro"}}},
		"a profile filter of the spec's": {{Destination: landlock.ProfileSeccompPath, Type: "bind", Source: "/run/ward/seccomp/own.bpf", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}}},
	} {
		s := &specs.Spec{Process: &specs.Process{Args: []string{"nginx"}}, Mounts: mounts}
		if _, err := h.Apply(&policy.Input{Spec: s}, nil); err == nil {
			t.Errorf("%s: a foreign filter at %s was accepted", name, landlock.SeccompPath)
		}
	}
}

// Without ward-init (Landlock skipped) the profile goes to runc as before.
func TestSeccompWithoutLauncher(t *testing.T) {
	f := &fakeFilters{}
	h := launcherHardener(t, f)
	s := &specs.Spec{Process: &specs.Process{Args: []string{"nginx"}}}
	if _, err := h.Apply(&policy.Input{Spec: s}, []string{policy.StepLandlock}); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || f.calls != 0 || len(filterMounts(s)) != 0 {
		t.Fatalf("profile %v, filter calls %d, mounts %v", s.Linux.Seccomp, f.calls, s.Mounts)
	}
}

// Without ward-init a container's own profile stays runc's, untouched,
// and nothing is compiled for it.
func TestOwnProfileWithoutLauncher(t *testing.T) {
	f := &fakeFilters{}
	h := launcherHardener(t, f)
	own := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActAllow}}}
	s := &specs.Spec{Process: &specs.Process{Args: []string{"nginx"}}, Linux: &specs.Linux{Seccomp: own}}
	if _, err := h.Apply(&policy.Input{Spec: s}, []string{policy.StepLandlock}); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != own || f.calls != 0 || f.workloads != 0 || len(filterMounts(s)) != 0 {
		t.Fatalf("profile %v, filter calls %d/%d, mounts %v", s.Linux.Seccomp, f.calls, f.workloads, s.Mounts)
	}
}
