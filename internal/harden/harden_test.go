package harden

import (
	"errors"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/capability"
	"github.com/ward-runtime/ward/policy"
)

// fakeSeccomp records the capabilities it was asked about; the real
// generator has its own tests in profiles/.
type fakeSeccomp struct{ asked []string }

func (f *fakeSeccomp) Profile(caps []string) (*specs.LinuxSeccomp, error) {
	f.asked = slices.Clone(caps)
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil
}

func newHardener(t *testing.T, src SeccompSource) *Hardener {
	t.Helper()
	h, err := New(Options{Capabilities: capability.Baseline(), Seccomp: src})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func weakSpec() *specs.Spec {
	all := capability.All()
	return &specs.Spec{
		Version: "1.2.0",
		Process: &specs.Process{
			Args: []string{"sh"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: all, Effective: all, Permitted: all, Inheritable: all, Ambient: []string{"CAP_SYS_ADMIN", "CAP_CHOWN"},
			},
		},
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "rw"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
			{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "rw"}},
		},
		Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}},
	}
}

func TestStepsRewrite(t *testing.T) {
	src := &fakeSeccomp{}
	h := newHardener(t, src)
	s := weakSpec()
	changes, err := h.Apply(&policy.Input{Spec: s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable} {
		if !slices.Equal(set, baselineInKernelOrder()) {
			t.Errorf("%s = %v, want the baseline", name, set)
		}
	}
	if !slices.Equal(c.Ambient, []string{"CAP_CHOWN"}) {
		t.Errorf("ambient = %v", c.Ambient)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("no_new_privs not set")
	}
	if s.Linux.MaskedPaths[0] != "/proc/kcore" || !containsAll(s.Linux.MaskedPaths, MaskedPaths()) {
		t.Errorf("masked paths = %v", s.Linux.MaskedPaths)
	}
	if !containsAll(s.Linux.ReadonlyPaths, ReadonlyPaths()) {
		t.Errorf("readonly paths = %v", s.Linux.ReadonlyPaths)
	}
	if !slices.Equal(s.Mounts[0].Options, []string{"nosuid", "ro"}) || !slices.Equal(s.Mounts[1].Options, []string{"ro"}) {
		t.Errorf("sysfs/cgroup options = %v / %v", s.Mounts[0].Options, s.Mounts[1].Options)
	}
	if !slices.Equal(s.Mounts[2].Options, []string{"rbind", "rw"}) {
		t.Errorf("a volume's options were touched: %v", s.Mounts[2].Options)
	}
	if s.Linux.Seccomp == nil || !slices.Equal(src.asked, baselineInKernelOrder()) {
		t.Errorf("seccomp %v generated for %v, want for the final bounding set", s.Linux.Seccomp, src.asked)
	}
	steps := map[string]bool{}
	for _, ch := range changes {
		steps[ch.Step] = true
		if ch.Path == "" || ch.Detail == "" {
			t.Errorf("change without path or detail: %+v", ch)
		}
	}
	for _, st := range []string{policy.StepCapabilities, policy.StepNoNewPrivs, policy.StepMaskedPaths, policy.StepReadonly, policy.StepSysfs, policy.StepSeccomp} {
		if !steps[st] {
			t.Errorf("no change recorded for step %s", st)
		}
	}
	again, err := h.Apply(&policy.Input{Spec: s}, nil)
	if err != nil || len(again) != 0 {
		t.Errorf("second Apply: %v, %v (want no changes)", again, err)
	}
}

func baselineInKernelOrder() []string {
	return capability.SetOf(capability.Baseline()).Names()
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func TestSeccompKeptOrReplaced(t *testing.T) {
	h := newHardener(t, &fakeSeccomp{})
	s := weakSpec()
	own := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}
	s.Linux.Seccomp = own
	if _, err := h.Apply(&policy.Input{Spec: s}, nil); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != own {
		t.Error("a confining profile the workload brought was replaced")
	}
	s = weakSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{}
	if _, err := h.Apply(&policy.Input{Spec: s}, nil); err != nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("an empty profile (no filter at all in runc) was kept: %v", err)
	}
	s = weakSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	changes, err := h.Apply(&policy.Input{Spec: s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Error("a default-allow profile was kept")
	}
	if !slices.ContainsFunc(changes, func(c Change) bool { return strings.Contains(c.Detail, "default-allow") }) {
		t.Errorf("changes %v do not say a default-allow profile was replaced", changes)
	}
}

func TestSkipSteps(t *testing.T) {
	h := newHardener(t, &fakeSeccomp{})
	s := weakSpec()
	if _, err := h.Apply(&policy.Input{Spec: s}, []string{policy.StepCapabilities, policy.StepSeccomp}); err != nil {
		t.Fatal(err)
	}
	if len(s.Process.Capabilities.Bounding) != capability.Count || s.Linux.Seccomp != nil {
		t.Error("skipped steps ran")
	}
	if !s.Process.NoNewPrivileges {
		t.Error("a step that was not skipped did not run")
	}
}

func TestRefusesProcFDCwd(t *testing.T) {
	h := newHardener(t, &fakeSeccomp{})
	s := weakSpec()
	s.Process.Cwd = "/proc/self/fd/5"
	_, err := h.Apply(&policy.Input{Spec: s}, nil)
	if !errors.Is(err, errProcFDCwd) {
		t.Fatalf("Apply = %v, want the proc fd refusal", err)
	}
	p := &specs.Process{Args: []string{"sh"}, Cwd: "/proc/1/fd/3"}
	if _, err := h.ApplyProcess(p, nil, true); !errors.Is(err, errProcFDCwd) {
		t.Fatalf("ApplyProcess = %v, want the proc fd refusal", err)
	}
}

func TestApplyProcessTouchesOnlyTheProcess(t *testing.T) {
	src := &fakeSeccomp{}
	h := newHardener(t, src)
	p := weakSpec().Process
	changes, err := h.ApplyProcess(p, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NoNewPrivileges || len(p.Capabilities.Bounding) != len(capability.Baseline()) {
		t.Errorf("process not hardened: %+v", p)
	}
	if src.asked != nil {
		t.Error("an exec process got a seccomp profile generated")
	}
	for _, c := range changes {
		if c.Step != policy.StepCapabilities && c.Step != policy.StepNoNewPrivs {
			t.Errorf("unexpected change %+v", c)
		}
	}
}

func TestHooksRunBeforeSeccomp(t *testing.T) {
	var order []string
	hook := func(name string) *Step {
		return &Step{Name: name, Apply: func(s *specs.Spec, rec *Record) error {
			order = append(order, name)
			return nil
		}}
	}
	src := &orderedSeccomp{order: &order}
	h, err := New(Options{Capabilities: capability.Baseline(), Seccomp: src, Userns: hook(policy.StepUserns), Landlock: hook(policy.StepLandlock)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply(&policy.Input{Spec: weakSpec()}, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{policy.StepUserns, policy.StepLandlock, policy.StepSeccomp}) {
		t.Errorf("order = %v", order)
	}
	if want := policy.Steps(); !slices.Equal(h.Steps(), want) {
		t.Errorf("steps %v, policy.Steps %v: the two lists must agree", h.Steps(), want)
	}
}

type orderedSeccomp struct{ order *[]string }

func (o *orderedSeccomp) Profile([]string) (*specs.LinuxSeccomp, error) {
	*o.order = append(*o.order, policy.StepSeccomp)
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil
}

func TestStepErrorsFailClosed(t *testing.T) {
	h := newHardener(t, failingSeccomp{})
	_, err := h.Apply(&policy.Input{Spec: weakSpec()}, nil)
	if err == nil || !strings.Contains(err.Error(), "hardening (seccomp)") {
		t.Fatalf("Apply = %v, want the seccomp step's error", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a seccomp source succeeded")
	}
}

type failingSeccomp struct{}

func (failingSeccomp) Profile([]string) (*specs.LinuxSeccomp, error) {
	return nil, errors.New("no profile today")
}
