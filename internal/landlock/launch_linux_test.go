package landlock

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestNoteJSON(t *testing.T) {
	for _, n := range []Note{
		{Launcher: "landlock", Profile: "wx", ABI: 3, Enforced: true, NotEnforced: []string{"tcp-connect (ABI 4): \"x\"", "b"}},
		{Launcher: "landlock", Profile: "p"},
		{Launcher: "landlock", Profile: "wx-audit", ABI: 7, Audit: true, WouldRefuse: []string{"execute below /tmp"}},
	} {
		b := n.appendJSON(nil)
		if !strings.HasSuffix(string(b), "}\n") || strings.Count(string(b), "\n") != 1 {
			t.Errorf("not one line: %q", b)
		}
		var got Note
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, n) {
			t.Errorf("%s read back as %#v", b, got)
		}
	}
}
