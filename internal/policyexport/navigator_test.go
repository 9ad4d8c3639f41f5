package policyexport

import (
	"regexp"
	"testing"

	"github.com/ward-runtime/ward/policy"
)

func TestNavigatorLayer(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	l := NavigatorLayer(p)
	id := regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	scores := map[string]int{}
	for _, tq := range l.Techniques {
		if !id.MatchString(tq.ID) {
			t.Errorf("technique ID %q", tq.ID)
		}
		if tq.Score < 0 || tq.Score > scoreReject {
			t.Errorf("%s: score %d", tq.ID, tq.Score)
		}
		scores[tq.ID] = tq.Score
	}
	// Escape to Host: the default policy rejects the privileged shape.
	if scores["T1611"] != scoreReject {
		t.Errorf("T1611 scored %d, want %d (reject)", scores["T1611"], scoreReject)
	}
	// Rootkit: CAP_SYS_MODULE and CAP_BPF go to gVisor.
	if scores["T1014"] != scoreSandbox {
		t.Errorf("T1014 scored %d, want %d (sandbox)", scores["T1014"], scoreSandbox)
	}
	if l.Domain != "enterprise-attack" || l.Versions["layer"] == "" {
		t.Errorf("domain %q versions %v", l.Domain, l.Versions)
	}
}
