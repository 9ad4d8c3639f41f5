package probes

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/policy"
)

// TestMain answers the "euid" re-execution the probes make of their own
// binary (here the test binary), as ward-probe does, instead of running
// the tests again.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "euid" {
		fmt.Println(os.Geteuid())
		return
	}
	os.Exit(m.Run())
}

// TestProbesAnswer runs every probe where the test runs (unprivileged or
// root, on the host): each must give a verdict and say why, without
// panicking and without leaving anything behind in the temp dir.
func TestProbesAnswer(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range All() {
		if seen[p.ID] {
			t.Errorf("duplicate probe %s", p.ID)
		}
		seen[p.ID] = true
		o := p.Run(Env{Self: self})
		switch o.Result {
		case Blocked, Reachable, Escaped:
		default:
			t.Errorf("%s: result %q", p.ID, o.Result)
		}
		if o.Detail == "" || len(o.Attack) == 0 {
			t.Errorf("%s: no detail or ATT&CK technique: %+v", p.ID, o)
		}
	}
	if len(seen) < 25 {
		t.Errorf("%d probes, the suite promises at least 25", len(seen))
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("probes left %d entries in the temp dir", len(left))
	}
}

// TestProbeFindingsExist: every finding a probe names is one ward's policy
// knows (a policy naming an unknown finding does not parse).
func TestProbeFindingsExist(t *testing.T) {
	for _, p := range All() {
		if len(p.Findings) == 0 {
			t.Errorf("%s names no ward finding", p.ID)
			continue
		}
		doc := fmt.Sprintf("apiVersion: ward.dev/v1alpha1\nkind: Policy\nmode: enforce\nrules:\n  - name: probe\n    reason: probe\n    match:\n      findings: [%s]\n    action: reject\n",
			strings.Join(p.Findings, ", "))
		if _, err := policy.Parse([]byte(doc), p.ID); err != nil {
			t.Errorf("%s: %v", p.ID, err)
		}
	}
}

// TestHostMarkerFound: the host-filesystem probe finds the marker through a
// bind of / and through a bind of a directory above it, and only with the
// marker's content.
func TestHostMarkerFound(t *testing.T) {
	marker := "/var/tmp/ward-it.x/marker"
	for _, c := range []struct {
		m    mount
		want string
	}{
		{mount{root: "/", point: "/host"}, "/host/var/tmp/ward-it.x/marker"},
		{mount{root: "/var/tmp", point: "/data"}, "/data/ward-it.x/marker"},
		{mount{root: "/var/tmp/ward-it.x/marker", point: "/m"}, "/m"},
	} {
		got := markerCandidates(c.m, marker)
		if !slices.Contains(got, c.want) {
			t.Errorf("%+v: candidates %v lack %s", c.m, got, c.want)
		}
	}
}

// TestGVisorKernelIsNotTheHost: a kernel-interface escape inside gVisor is
// attack surface of gVisor's kernel; a host-side one stays an escape.
func TestGVisorKernelIsNotTheHost(t *testing.T) {
	escape := func(Env) (Result, string) { return Escaped, "opened" }
	kernel := Probe{ID: "k", Kernel: true, run: escape}
	host := Probe{ID: "h", run: escape}
	if o := kernel.Run(Env{GVisor: true}); o.Result != Reachable || !strings.Contains(o.Detail, "gVisor") {
		t.Errorf("kernel probe in gVisor: %+v", o)
	}
	if o := kernel.Run(Env{}); o.Result != Escaped {
		t.Errorf("kernel probe on the host's kernel: %+v", o)
	}
	if o := host.Run(Env{GVisor: true}); o.Result != Escaped {
		t.Errorf("host-side probe in gVisor: %+v", o)
	}
}
