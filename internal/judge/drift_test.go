package judge

import (
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// TestDrift: what a verdict says ward does about drift, by the container's
// Landlock profile, the policy's detection and the node's sensor, and that
// the writable-rootfs finding and `ward explain` say it.
func TestDrift(t *testing.T) {
	const spec = "../../testdata/corpus/ctr-run/config.json"
	judgeWith := func(t *testing.T, mutate func(*policy.Policy), o Options, annotations map[string]string) Verdict {
		t.Helper()
		p, err := policy.Default()
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(p)
		}
		o.Launcher = testLauncher
		j, err := New(p, o)
		if err != nil {
			t.Fatal(err)
		}
		b := load(t, spec)
		for k, v := range annotations {
			if b.Spec.Annotations == nil {
				b.Spec.Annotations = map[string]string{}
			}
			b.Spec.Annotations[k] = v
		}
		us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
		v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Userns: us})
		if err != nil {
			t.Fatal(err)
		}
		if v.Drift != DriftNone {
			r := v.Report(p)
			found := false
			for _, f := range r.Findings {
				if f.ID == policy.IDWritableRootfs {
					found = true
					if f.Ward != v.Drift.Handling() {
						t.Errorf("writable-rootfs: ward %q, want %q", f.Ward, v.Drift.Handling())
					}
				}
			}
			if !found {
				t.Fatalf("%s has no writable-rootfs finding to say it on", spec)
			}
		}
		return v
	}
	detectionOff := func(p *policy.Policy) { p.Detection.Enabled = false }
	audit := func(p *policy.Policy) { p.Mode = policy.Audit }
	for _, c := range []struct {
		name        string
		mutate      func(*policy.Policy)
		o           Options
		annotations map[string]string
		want        Drift
		explains    []string
	}{
		{name: "default", want: DriftAlerted,
			explains: []string{"writes after it starts and then runs", "`drift` alert", "not refused", harden.AnnotationLandlock + ": wx", policy.AnnotationDrift + ": strict"}},
		{name: "write-xor-execute", annotations: map[string]string{harden.AnnotationLandlock: "wx"}, want: DriftRefused,
			explains: []string{"writes after it starts and then runs", "is refused", "write-xor-execute"}},
		{name: "wx-audit refuses nothing", annotations: map[string]string{harden.AnnotationLandlock: "wx-audit"}, want: DriftAlerted},
		{name: "detection off", mutate: detectionOff, want: DriftUnwatched,
			explains: []string{"neither alerted nor refused", harden.AnnotationLandlock + ": wx"}},
		{name: "no sensor on the node", o: Options{NoSensor: true}, want: DriftUnwatched},
		{name: "audit mode", mutate: audit, want: DriftNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := judgeWith(t, c.mutate, c.o, c.annotations)
			if v.Drift != c.want {
				t.Fatalf("drift %d, want %d (action %s, audit %v)", v.Drift, c.want, v.Action, v.Audit)
			}
			for _, s := range c.explains {
				if !strings.Contains(v.Drift.Explain(), s) {
					t.Errorf("explanation lacks %q: %s", s, v.Drift.Explain())
				}
			}
		})
	}
	// A sandboxed container is held by its sandbox, not by drift detection.
	_, j := launcherJudge(t)
	b := load(t, "../../testdata/corpus/cri-cap-sys-admin/container.json")
	us := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
	v, err := j.Spec(policy.Input{Spec: b.Spec, Workload: b.Workload, Userns: us})
	if err != nil || v.Action != policy.Sandbox || v.Drift != DriftNone || v.Drift.Explain() != "" {
		t.Errorf("sandboxed: %s, drift %d, %v", v.Action, v.Drift, err)
	}
}
