package policy

import (
	"strings"
	"testing"
)

func TestDetectionSection(t *testing.T) {
	head := "apiVersion: ward.dev/v1alpha1\nkind: Policy\nextends: default\ndetection:\n"
	for _, c := range []struct{ body, want string }{
		{"  mode: loud\n", "line 5: detection.mode"},
		{"  responses:\n    - {rule: nope, response: deny}\n", "detection.responses[0].rule: no detection rule \"nope\""},
		{"  responses:\n    - {rule: mount, response: explode}\n", "detection.responses[0].response: want alert, deny, freeze or kill"},
		{"  responses:\n    - {rule: mount, response: deny}\n    - {rule: mount, response: kill}\n", "detection.responses[1].rule"},
		{"  enabled: \"yes\"\n", "want true or false"},
	} {
		_, err := Parse([]byte(head+c.body), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
	p, err := Parse([]byte(head+"  mode: audit\n  responses:\n    - {rule: module, response: kill}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bool(p.Detection.Enabled) || p.Detection.Response("module") != RespondKill || p.Detection.Response("mount") != RespondAlert {
		t.Errorf("%+v", p.Detection)
	}
	d, _ := Default()
	if !bool(d.Detection.Enabled) || d.Detection.Response("mount") != RespondDeny {
		t.Errorf("default detection: %+v", d.Detection)
	}
}
