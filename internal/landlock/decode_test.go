package landlock

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// sampleRulesets have every field, awkward strings and both kinds of
// port list (nil: unrestricted, empty: refuse all).
var sampleRulesets = []Ruleset{
	{Profile: "wx", Root: Read | Exec, Paths: []PathRule{{Path: "/tmp", Access: Read | Write}, {Path: "/q\"u\\o\tte\x01é😀", Access: Read}},
		TCPConnect: []uint16{80, 443}, TCPBind: []uint16{}, Scope: []string{ScopeAbstractUnixSocket, ScopeSignal}, RequireABI: 4},
	{Profile: "minimal", Root: Read},
	{Profile: "audit", Root: Read | Write | Exec, HostNetwork: true, Audit: true},
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, r := range sampleRulesets {
		enc, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("Decode(%s)\n got %#v\nwant %#v", enc, got, r)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, "want '{' at end of input"},
		{`{"profile":"p","root":"rx"} x`, "data after the ruleset"},
		{`{"profile":"p","root":"rx","extra":1}`, `unknown field "extra"`},
		{`{"Profile":"p","root":"rx"}`, `unknown field "Profile"`},
		{`{"profile":"p","profile":"q","root":"rx"}`, `field "profile" given twice`},
		{`{"profile":"p","root":"rq"}`, `root: access "rq"`},
		{`{"profile":"p","root":"rx","paths":[{"path":"/a","access":"r","x":1}]}`, `paths[0]: unknown field "x"`},
		{`{"profile":"p","root":"rx","tcpConnect":[70000]}`, "tcpConnect: number 70000 out of range"},
		{`{"profile":"p","root":"rx","tcpConnect":[1.5]}`, "want an integer"},
		{`{"profile":"p","root":"rx","tcpConnect":[01]}`, "leading zero"},
		{"{\"profile\":\"p\x01\",\"root\":\"rx\"}", "control character"},
		{"{\"profile\":\"\xff\",\"root\":\"rx\"}", "not valid UTF-8"},
		{`{"profile":"\ud800","root":"rx"}`, "lone surrogate"},
		{`{"profile":"\q","root":"rx"}`, `invalid escape \q`},
		{`{"profile":"p","root":"x"}`, `root access "x" lacks r`},
		{`{"profile":"p","root":"rx","paths":[{"path":"tmp","access":"rw"}]}`, `paths[0]: path "tmp" is not absolute`},
		{`{"profile":"p","root":"rx","scope":["nope"]}`, `unknown scope "nope"`},
		{`{"profile":"p","root":"rx","paths":[{"path":"/a\u0000b","access":"r"}]}`, "NUL byte"},
		{`{"profile":"p","root":"rx","requireABI":9}`, "requireABI 9"},
		{`{"profile":"p","root":"rx","audit":1}`, "audit: want true or false"},
	} {
		_, err := Decode(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%q):\n got %v\nwant %q", c.in, err, c.want)
		}
	}
}

// decodeJSON is what Decode must agree with: encoding/json, strict about
// unknown fields, then the same validation.
func decodeJSON(s string) (Ruleset, error) {
	var r Ruleset
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Ruleset{}, err
	}
	return r, r.Validate()
}

// FuzzDecode: whatever the launcher reads from its environment or the
// handoff file, Decode returns an error or a valid ruleset, never panics,
// and what it accepts encoding/json reads the same way (Decode may refuse
// more: duplicate keys, keys in another case, trailing data, invalid
// UTF-8). An accepted ruleset encodes back to something Decode reads
// equally.
func FuzzDecode(f *testing.F) {
	for _, r := range sampleRulesets {
		enc, _ := r.Encode()
		f.Add(enc)
	}
	f.Add(`{"profile":"wx","root":"rx","paths":[{"path":"/tmp","access":"rw"}],"tcpConnect":null,"tcpBind":null,"scope":["signal"]}`)
	f.Add(`{"profile":"a\u00e9\ud83d\ude00\n","root":"rwx","paths":null,"requireABI":-0}`)
	f.Add(` { "root" : "r" , "tcpBind" : [ 1 , 65535 ] } `)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Decode(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Decode(%q) accepted an invalid ruleset: %v", s, err)
		}
		want, err := decodeJSON(s)
		if err != nil {
			t.Fatalf("Decode(%q) accepted what encoding/json refuses: %v", s, err)
		}
		if !reflect.DeepEqual(canon(r), canon(want)) {
			t.Fatalf("Decode(%q)\n got %#v\nencoding/json %#v", s, r, want)
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", r, err)
		}
		back, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip of %q: %#v %v", enc, back, err)
		}
	})
}

// canon makes empty path and scope lists nil: both mean none, and the
// encoding leaves them out. (Empty and nil port lists differ.)
func canon(r Ruleset) Ruleset {
	if len(r.Paths) == 0 {
		r.Paths = nil
	}
	if len(r.Scope) == 0 {
		r.Scope = nil
	}
	return r
}

func TestValidNameMatchesPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
	for _, s := range []string{"", "a", "-", "a-", "-a", "a-b", "wx", "wx-fs", "Wx", "a_b", "a b", "0", "é",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "a\n"} {
		if got, want := validName(s), pattern.MatchString(s); got != want {
			t.Errorf("validName(%q) = %v, want %v", s, got, want)
		}
	}
}
