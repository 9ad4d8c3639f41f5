package judge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// TestUserns: with the step on, a hardened container gets ward's user
// namespace, an exempted one keeps host-user reported with the exemption's
// reason, a gVisor-bound one gets a note, a kubelet mapping is kept with a
// note or refused, and a front door that allocated nothing is refused.
func TestUserns(t *testing.T) {
	pool := []userns.Range{{Start: 1 << 30, Size: 100 * userns.BlockSize}}
	block := &policy.UsernsInput{HostID: 1 << 30, Size: userns.BlockSize}
	pol, err := policy.Parse([]byte(`apiVersion: ward.dev/v1alpha1
kind: Policy
userns: {enabled: true}
rules:
  - name: sandbox-admin
    reason: test
    match: {findings: [cap-sys-admin]}
    action: sandbox
    backend: gvisor
exemptions:
  - name: legacy-uids
    reason: its image writes files as host root on a shared disk
    match: {namespaces: [legacy]}
    skip: [userns]
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	j, err := New(pol, Options{UsernsPool: pool})
	if err != nil {
		t.Fatal(err)
	}
	changed := func(v Verdict) bool {
		return slices.ContainsFunc(v.Changes, func(c harden.Change) bool { return c.Step == policy.StepUserns })
	}
	finding := func(v Verdict, id string) string {
		for _, f := range v.Report(pol).Findings {
			if f.ID == id {
				return f.Ward
			}
		}
		return ""
	}
	run := func(edit func(*specs.Spec), in *policy.UsernsInput) (Verdict, *specs.Spec, error) {
		b := load(t, "../../testdata/corpus/ctr-run/config.json")
		if edit != nil {
			edit(b.Spec)
		}
		v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: bundle.WorkloadOf(b.Spec), Userns: in})
		return v, b.Spec, err
	}

	v, s, err := run(nil, block)
	if err != nil || !changed(v) || finding(v, policy.IDHostUser) != "fixed (userns)" {
		t.Fatalf("hardened: %v, changes %v, host-user %q", err, v.Changes, finding(v, policy.IDHostUser))
	}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != 1<<30 {
		t.Errorf("mappings %v", s.Linux.UIDMappings)
	}

	v, _, err = run(func(s *specs.Spec) {
		s.Annotations = map[string]string{bundle.AnnotationSandboxNamespace: "legacy"}
	}, block)
	if err != nil || changed(v) || finding(v, policy.IDHostUser) != "reported" {
		t.Errorf("exempted: %v, changes %v, host-user %q", err, v.Changes, finding(v, policy.IDHostUser))
	}
	if r := v.Report(pol); len(r.Exemptions) != 1 || !strings.Contains(r.Exemptions[0].Reason, "host root") || !slices.Contains(r.Skipped, policy.StepUserns) {
		t.Errorf("exemption not shown: %+v", r.Exemptions)
	}

	v, _, err = run(func(s *specs.Spec) {
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	}, block)
	if err != nil || v.Action != policy.Sandbox || !slices.Contains(v.Notes, fmt.Sprintf(NoteUsernsSandbox, policy.GVisor)) {
		t.Errorf("gVisor: %v, %s, notes %v", err, v.Action, v.Notes)
	}

	kubelet := func(host uint32) func(*specs.Spec) {
		return func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: 65536}}
			s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
		}
	}
	v, s, err = run(kubelet(65536*9), block)
	if err != nil || !slices.Contains(v.Notes, NoteUsernsKept) || s.Linux.UIDMappings[0].HostID != 65536*9 {
		t.Errorf("kubelet mapping: %v, notes %v, mappings %v", err, v.Notes, s.Linux.UIDMappings)
	}
	if _, _, err = run(kubelet(1<<30+65536), block); err == nil || !strings.Contains(err.Error(), "ward's ID pool") {
		t.Errorf("kubelet mapping inside ward's pool: %v", err)
	}
	if _, _, err = run(nil, nil); !errors.Is(err, harden.ErrNoIDBlock) {
		t.Errorf("no block allocated: %v, want ErrNoIDBlock", err)
	}
}
