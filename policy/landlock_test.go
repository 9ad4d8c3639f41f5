package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/landlock"
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
	if !p.Landlock.Enabled() || p.Landlock.Profile != "baseline" {
		t.Errorf("default profile %q", p.Landlock.Profile)
	}
}

// FuzzLandlockSection feeds operator-written landlock sections to the
// policy parser: a bad one is refused with an error, never a panic, and
// every profile it accepts resolves, for read-only and writable rootfs,
// into a ruleset the launcher decodes back unchanged.
func FuzzLandlockSection(f *testing.F) {
	head := "apiVersion: ward.dev/v1alpha1\nkind: Policy\nlandlock:\n"
	f.Add("  profile: wx\n")
	f.Add("  profiles:\n    - name: web\n      extends: wx\n      paths: [{path: /app/bin, access: rx}]\n      network: {tcpConnect: [5432], tcpBind: []}\n      requireABI: 4\n  select:\n    - name: web\n      reason: web tier\n      match: {namespaces: [web-*]}\n      profile: web\n")
	f.Add("  profiles:\n    - name: own\n      rootfs: rx\n      writableRootfs: rw\n      volumes: rw\n      readOnlyVolumes: r\n      scope: [signal]\n")
	f.Add("  profile: none\n")
	f.Fuzz(func(t *testing.T, body string) {
		p, err := Parse([]byte(head+body), "fuzz.yaml")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		mounts := []landlock.Mount{{Destination: "/data", Volume: true}, {Destination: "/cfg", Volume: true, ReadOnly: true}}
		for name, prof := range p.Landlock.resolved {
			if err := prof.Validate(); err != nil {
				t.Fatalf("accepted profile %q is invalid: %v", name, err)
			}
			for _, ro := range []bool{true, false} {
				r := prof.Ruleset(landlock.Container{ReadonlyRoot: ro, Mounts: mounts})
				enc, err := r.Encode()
				if err != nil {
					t.Fatalf("profile %q: ruleset does not encode: %v", name, err)
				}
				if len(r.Scope) == 0 {
					r.Scope = nil // the encoding leaves an empty list out
				}
				back, err := landlock.Decode(enc)
				if err != nil || !reflect.DeepEqual(back, r) {
					t.Fatalf("profile %q: %s decodes as %#v, %v", name, enc, back, err)
				}
			}
		}
	})
}
