package policy

import (
	"strings"
	"testing"
)

func TestLandlockSectionErrors(t *testing.T) {
	head := "apiVersion: ward.dev/v1alpha1\nkind: Policy\nlandlock:\n"
	for _, c := range []struct{ body, want string }{
		{"  profile: nope\n", "line 4: landlock.profile: unknown profile \"nope\""},
		{"  profiles:\n    - name: mine\n      extends: wx\n      paths: [{path: tmp, access: rw}]\n", "landlock.profiles[0]: paths[0].path: path \"tmp\" is not absolute"},
		{"  profiles:\n    - name: mine\n      extends: wx\n      paths: [{path: /x, access: rq}]\n", "not one of r, w, x"},
		{"  profiles:\n    - name: wx\n      extends: wx\n", "built-in profile"},
		{"  profiles:\n    - name: mine\n      rootfs: rx\n", "must set rootfs and writableRootfs"},
		{"  profiles:\n    - name: mine\n      extends: wx\n      network: {tcpConnect: [70000]}\n", "70000"},
		{"  select:\n    - name: s\n      reason: r\n      match: {namespaces: [a]}\n      profile: other\n", "landlock.select[0].profile: unknown profile"},
		{"  profile: none\n  select:\n    - name: s\n      reason: r\n      match: {namespaces: [a]}\n      profile: wx\n", "select needs a default profile"},
	} {
		_, err := Parse([]byte(head+c.body), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %q", c.body, err, c.want)
		}
	}
	p, err := Parse([]byte(head+"  profiles:\n    - name: web\n      extends: wx\n      network: {tcpConnect: [5432]}\n  select:\n    - name: web\n      reason: web tier\n      match: {namespaces: [web-*]}\n      profile: web\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Landlock.Enabled() || p.Landlock.Profile != "wx" {
		t.Errorf("default profile %q", p.Landlock.Profile)
	}
}
