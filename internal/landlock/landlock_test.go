package landlock

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

func TestParseAccess(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Access
		err  string
	}{
		{"r", Read, ""}, {"rx", Read | Exec, ""}, {"xr", Read | Exec, ""}, {"rwx", Read | Write | Exec, ""},
		{"", 0, "empty"}, {"rr", 0, "twice"}, {"rq", 0, "not one of"},
	} {
		got, err := ParseAccess(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
		if rt, _ := ParseAccess(got.String()); rt != got {
			t.Errorf("%q: round trip %v", c.in, rt)
		}
	}
}

// fakeFS is a lister over a fixed tree: dirs end in "/", "*" marks an
// executable file.
func fakeFS(entries ...string) Lister {
	return func(dir string) ([]Entry, error) {
		var out []Entry
		found := false
		for _, e := range entries {
			name := strings.TrimSuffix(strings.TrimSuffix(e, "/"), "*")
			parent := name[:strings.LastIndex(name, "/")]
			if parent == "" {
				parent = "/"
			}
			if name == dir {
				found = true
			}
			if parent != dir {
				continue
			}
			out = append(out, Entry{Name: strings.TrimPrefix(name[len(parent):], "/"), Dir: strings.HasSuffix(e, "/"), Exec: strings.HasSuffix(e, "*")})
		}
		if !found && dir != "/" {
			return nil, fs.ErrNotExist
		}
		return out, nil
	}
}

func TestPlan(t *testing.T) {
	tree := fakeFS("/bin/", "/usr/", "/usr/bin/", "/etc/", "/tmp/", "/var/", "/var/tmp/", "/var/lib/",
		"/manager*", "/README", "/app/", "/app/server*", "/proc/", "/.ward/")
	wx := Ruleset{Profile: "t", Root: Read | Exec, Paths: []PathRule{
		{"/bin", Read | Exec}, {"/usr", Read | Exec}, {"/tmp", Read | Write}, {"/var/tmp", Read | Write},
		{"/proc", Read | Write}, {"/.ward", Read},
	}}
	writable := wx
	writable.Root = Read | Write
	for _, c := range []struct {
		name  string
		r     Ruleset
		entry string
		want  []string // "path access", any order
	}{
		{"read-only rootfs: / split, image dirs rx, writable places rw", wx, "", []string{
			"/ r", "/etc rx", "/var r", "/var/lib rx", "/manager rx", "/README rx", "/app rx",
			"/bin rx", "/usr rx", "/tmp rw", "/var/tmp rw", "/proc rw", "/.ward r",
		}},
		{"writable rootfs: image rw, executables and program dirs rx, entry granted", writable, "/app/server", []string{
			"/ r", "/etc rw", "/var rw", "/manager rx", "/README rw", "/app rw",
			"/bin rx", "/usr rx", "/tmp rw", "/var/tmp rw", "/proc rw", "/.ward r", "/app/server rx",
		}},
		{"entry in a writable place is never granted", writable, "/tmp/dropped", []string{
			"/ r", "/etc rw", "/var rw", "/manager rx", "/README rw", "/app rw",
			"/bin rx", "/usr rx", "/tmp rw", "/var/tmp rw", "/proc rw", "/.ward r",
		}},
		{"no conflict: no split", Ruleset{Root: Read | Exec, Paths: []PathRule{{"/usr", Read | Exec | Write}}}, "", []string{"/ rx", "/usr rwx"}},
		{"missing rule path: skipped when split", Ruleset{Root: Read | Exec, Paths: []PathRule{{"/nope/deeper", Read}}}, "", []string{
			"/ r", "/bin rx", "/usr rx", "/etc rx", "/tmp rx", "/var rx", "/manager rx", "/README rx", "/app rx", "/proc rx", "/.ward rx", "/nope/deeper r",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			grants, err := Plan(c.r, c.entry, tree)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range grants {
				got = append(got, g.Path+" "+g.Access.String())
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			// W^X: nothing planned both writable and executable unless
			// a rule asked for it.
			for _, g := range grants {
				if g.Access&Write != 0 && g.Access&Exec != 0 && c.r.Paths[0].Access != Read|Exec|Write {
					t.Errorf("%s granted rwx", g.Path)
				}
			}
		})
	}
}

func TestDegrade(t *testing.T) {
	full := Ruleset{Profile: "t", Root: Read, TCPConnect: []uint16{80}, TCPBind: []uint16{}, Scope: []string{ScopeSignal, ScopeAbstractUnixSocket}}
	for _, c := range []struct {
		abi  int
		want []string // prefixes of NotEnforced
	}{
		{0, []string{"filesystem", "tcp-connect", "tcp-bind", "scope signal", "scope abstract-unix-socket"}},
		{1, []string{"refer", "truncate", "tcp-connect", "tcp-bind", "scope signal", "scope abstract-unix-socket"}},
		{3, []string{"tcp-connect", "tcp-bind", "scope signal", "scope abstract-unix-socket"}},
		{4, []string{"scope signal", "scope abstract-unix-socket"}},
		{6, nil},
		{7, nil},
	} {
		e := Degrade(full, c.abi)
		if len(e.NotEnforced) != len(c.want) {
			t.Errorf("ABI %d: %q, want %q", c.abi, e.NotEnforced, c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(e.NotEnforced[i], w) {
				t.Errorf("ABI %d: [%d] %q, want %q...", c.abi, i, e.NotEnforced[i], w)
			}
		}
		if c.abi >= 6 && (e.Net == 0 || e.Scoped == 0 || e.FS != fsHandled) {
			t.Errorf("ABI %d: %+v", c.abi, e)
		}
	}
	if err := Check(Ruleset{Profile: "t", RequireABI: 6}, 5); err == nil {
		t.Error("RequireABI 6 passed on ABI 5")
	}
}

func TestRulesetRoundTripKeepsEmptyVsUnrestricted(t *testing.T) {
	p := Profile{Name: "p", Rootfs: Read | Exec, WritableRootfs: Read | Write, Volumes: Read | Write, ReadOnlyVolumes: Read | Exec,
		Network: &Network{TCPBind: []uint16{}}}
	r := p.Ruleset(Container{ReadonlyRoot: true, Mounts: []Mount{
		{Destination: "/data", Volume: true}, {Destination: "/cfg", Volume: true, ReadOnly: true},
		{Destination: "/proc"}, {Destination: "/.ward/ward-init", Volume: true, ReadOnly: true},
	}})
	enc, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.TCPConnect != nil || back.TCPBind == nil || len(back.TCPBind) != 0 {
		t.Errorf("connect %v (want nil), bind %v (want empty)", back.TCPConnect, back.TCPBind)
	}
	want := []PathRule{{"/data", Read | Write}, {"/cfg", Read | Exec}, {Dir, Read}}
	if !slices.Equal(back.Paths, want) {
		t.Errorf("paths %v, want %v", back.Paths, want)
	}
	if _, err := Decode(`{"profile":"x","root":"rx","bogus":1}`); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestProfileValidate(t *testing.T) {
	ok := Profile{Name: "ok", Rootfs: Read | Exec, WritableRootfs: Read | Write}
	for _, c := range []struct {
		mod  func(*Profile)
		want string
	}{
		{func(p *Profile) { p.Name = "Bad_Name" }, "name"},
		{func(p *Profile) { p.Rootfs = Exec }, "rootfs"},
		{func(p *Profile) { p.Paths = []PathRule{{"tmp", Read}} }, "paths[0].path"},
		{func(p *Profile) { p.Paths = []PathRule{{"/tmp/", Read}} }, "not clean"},
		{func(p *Profile) { p.Paths = []PathRule{{"/", Read}} }, "rootfs"},
		{func(p *Profile) { p.Paths = []PathRule{{"/.ward/x", Read}} }, "ward's own"},
		{func(p *Profile) { p.Paths = []PathRule{{"/a", Read}, {"/a", Exec}} }, "twice"},
		{func(p *Profile) { p.Network = &Network{TCPConnect: []uint16{0}} }, "port 0"},
		{func(p *Profile) { p.Network = &Network{} }, "give tcpConnect or tcpBind"},
		{func(p *Profile) { p.Scope = []string{"ipc"} }, "unknown scope"},
		{func(p *Profile) { p.RequireABI = 99 }, "requireABI"},
	} {
		p := ok
		c.mod(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error with %q, got %v", c.want, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

// TestEncodeMatchesEncodingJSON checks the hand-written encoder against
// encoding/json on rulesets with every field and awkward strings.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	rulesets := []Ruleset{
		{Profile: "wx", Root: Read | Exec, Paths: []PathRule{{Path: "/tmp", Access: Read | Write}, {Path: "/q\"u\\o\tte\x01é", Access: Read}},
			TCPConnect: []uint16{80, 443}, TCPBind: []uint16{}, Scope: []string{ScopeAbstractUnixSocket, ScopeSignal}, RequireABI: 4},
		{Profile: "minimal", Root: Read},
	}
	for _, r := range rulesets {
		got := r.appendJSON(nil)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("appendJSON %s\nencoding/json %s", got, want)
		}
	}
}

func TestEnforcedAndUnrestricted(t *testing.T) {
	all := Read | Write | Exec
	wx := Ruleset{Profile: "wx", Root: Read | Write, Paths: []PathRule{{"/usr", Read | Exec}, {"/tmp", Read | Write}, {Dir, Read}},
		Scope: []string{ScopeSignal}}
	baseline := Ruleset{Profile: "baseline", Root: all, Paths: []PathRule{{Dir, Read}}}
	for _, c := range []struct {
		name         string
		r            Ruleset
		unrestricted bool
		scoped       uint64 // at ABI 7
	}{
		{"baseline", baseline, true, 0},
		{"baseline on host network", Ruleset{Profile: "baseline", Root: all, Paths: []PathRule{{Dir, Read}}, HostNetwork: true}, false, ll.ScopeAbstractUnixSocket},
		{"wx", wx, false, ll.ScopeSignal},
		{"wx audit", func() Ruleset { r := wx; r.Audit = true; return r }(), true, 0},
		{"wx audit on host network", func() Ruleset { r := wx; r.Audit, r.HostNetwork = true, true; return r }(), false, ll.ScopeAbstractUnixSocket},
		{"port list", Ruleset{Root: all, TCPBind: []uint16{}}, false, 0},
	} {
		e := c.r.Enforced()
		if e.Unrestricted() != c.unrestricted {
			t.Errorf("%s: unrestricted %v", c.name, e.Unrestricted())
		}
		if d := Degrade(c.r, 7); d.Scoped != c.scoped || (c.unrestricted && (d.FS != 0 || d.NotEnforced != nil)) {
			t.Errorf("%s: degrade %+v", c.name, d)
		}
		if c.r.Audit && !slices.Contains(e.Paths, PathRule{Dir, Read}) && !c.unrestricted {
			t.Errorf("%s: audit ruleset leaves %s writable", c.name, Dir)
		}
	}
	if got := Degrade(baseline, 0); got.NotEnforced != nil {
		t.Errorf("nothing to enforce, yet %v", got.NotEnforced)
	}
}

func TestAccessAtAndWouldRefuse(t *testing.T) {
	r := Ruleset{Root: Read | Write, Paths: []PathRule{{"/usr", Read | Exec}, {"/usr/local/tmp", Read | Write}, {"/tmp", Read | Write}}, HostNetwork: true}
	for p, want := range map[string]Access{
		"/app/run": Read | Write, "/usr/bin/cc": Read | Exec, "/usr/local/tmp/a.out": Read | Write, "/usrx": Read | Write, "/tmp": Read | Write,
	} {
		if got := r.AccessAt(p); got != want {
			t.Errorf("AccessAt(%s) = %s, want %s", p, got, want)
		}
	}
	got := r.WouldRefuse()
	for _, want := range []string{"execute elsewhere on the rootfs", "write below /usr", "execute below /tmp", "scope abstract-unix-socket"} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("WouldRefuse %q lacks %q", got, want)
		}
	}
}
