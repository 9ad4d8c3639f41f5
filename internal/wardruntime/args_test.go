package wardruntime

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSubcommandArgs(t *testing.T) {
	cases := []struct {
		name     string
		spec     *flagSpec
		args     []string
		operands []string
		values   map[string]string
		bools    []string
		tokens   []string // tokens() with nothing dropped
	}{
		{
			name: "create, containerd's shape", spec: createFlags(),
			args:     []string{"--bundle", "/b", "--pid-file", "/p", "--console-socket=/s", "id1"},
			operands: []string{"id1"},
			values:   map[string]string{"bundle": "/b", "pid-file": "/p", "console-socket": "/s"},
			tokens:   []string{"--bundle", "/b", "--pid-file", "/p", "--console-socket=/s"},
		},
		{
			name: "short alias and single dash", spec: createFlags(),
			args:     []string{"-b", "/b", "-no-pivot", "id1"},
			operands: []string{"id1"},
			values:   map[string]string{"bundle": "/b"},
			bools:    []string{"no-pivot"},
			tokens:   []string{"-b", "/b", "-no-pivot"},
		},
		{
			name: "flags after the operand (urfave reorders)", spec: flagsOf("delete"),
			args: []string{"id1", "--force"}, operands: []string{"id1"}, bools: []string{"force"},
			tokens: []string{"--force"},
		},
		{
			name: "exec: flags end at the ID", spec: execFlags(),
			args:     []string{"-t", "--env", "A=1", "-e", "B=2", "id1", "sh", "-c", "echo --cwd"},
			operands: []string{"id1", "sh", "-c", "echo --cwd"},
			bools:    []string{"tty"},
			tokens:   []string{"-t", "--env", "A=1", "-e", "B=2"},
		},
		{
			name: "double dash ends flags", spec: flagsOf("kill"),
			args: []string{"--all", "--", "id1", "-9"}, operands: []string{"id1", "-9"}, bools: []string{"all"},
			tokens: []string{"--all"},
		},
		{
			name: "bool with explicit false", spec: runFlags(),
			args: []string{"--detach=false", "id1"}, operands: []string{"id1"},
			tokens: []string{"--detach=false"},
		},
		{
			name: "unknown flag kept as written", spec: createFlags(),
			args: []string{"--future-flag", "id1"}, operands: []string{"id1"},
			tokens: []string{"--future-flag"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := tc.spec.parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cl.operands, tc.operands) {
				t.Errorf("operands %q, want %q", cl.operands, tc.operands)
			}
			for k, want := range tc.values {
				if got, _ := cl.value(k); got != want {
					t.Errorf("--%s = %q, want %q", k, got, want)
				}
			}
			for _, b := range tc.bools {
				if !cl.bool(b) {
					t.Errorf("--%s not set", b)
				}
			}
			if got := cl.tokens(); !reflect.DeepEqual(got, tc.tokens) {
				t.Errorf("tokens %q, want %q", got, tc.tokens)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := createFlags().parse([]string{"id", "--bundle"}); err == nil {
		t.Error("a value flag without its value parsed")
	}
	if _, _, err := parseGlobals([]string{"--log-format", "xml", "state", "x"}); err == nil {
		t.Error("--log-format xml accepted")
	}
	if _, _, err := parseGlobals([]string{"--rootless", "maybe", "state", "x"}); err == nil {
		t.Error("--rootless maybe accepted")
	}
}

func TestExecFlagsRepeat(t *testing.T) {
	cl, err := execFlags().parse([]string{"--cap", "CAP_A", "-c", "CAP_B", "--env=X=1", "id", "true"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cl.values("cap"); !reflect.DeepEqual(got, []string{"CAP_A", "CAP_B"}) {
		t.Errorf("caps %q", got)
	}
	if got := cl.values("env"); !reflect.DeepEqual(got, []string{"X=1"}) {
		t.Errorf("env %q", got)
	}
	if got := cl.tokens(processFlags()...); len(got) != 0 {
		t.Errorf("process flags survive dropping: %q", got)
	}
}

func TestGlobals(t *testing.T) {
	g, rest, err := parseGlobals([]string{
		"--root", "/run/x", "--log=/l.json", "--log-format", "json", "--systemd-cgroup",
		"--rootless=auto", "--criu=/c", "--ward-policy", "/p.yaml", "create", "--bundle", "/b", "id",
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.root != "/run/x" || !g.rootSet || g.log != "/l.json" || g.logFormat != "json" || !g.systemdCgroup ||
		g.rootless != "auto" || g.wardPolicy != "/p.yaml" {
		t.Errorf("globals %+v", g)
	}
	if !reflect.DeepEqual(rest, []string{"create", "--bundle", "/b", "id"}) {
		t.Errorf("rest %q", rest)
	}
	runc := strings.Join(g.backendGlobals(false, "/run/x/runc"), " ")
	if runc != "--root /run/x/runc --log /l.json --log-format json --systemd-cgroup --rootless auto --criu=/c" {
		t.Errorf("runc globals %q", runc)
	}
	// runsc's --rootless is a bool, and it has no --criu.
	runsc := strings.Join(g.backendGlobals(true, "/run/x/runsc"), " ")
	if runsc != "--root /run/x/runsc --log /l.json --log-format json --systemd-cgroup" {
		t.Errorf("runsc globals %q", runsc)
	}
	if strings.Contains(runc, "ward") || strings.Contains(runsc, "ward") {
		t.Error("ward's own flags reached a backend")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("--bundle /b --pid-file=/p id")
	f.Add("-t -e A=1 id sh -c x")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Fields(s)
		for _, spec := range []*flagSpec{createFlags(), execFlags(), flagsOf("delete")} {
			cl, err := spec.parse(args)
			if err != nil {
				continue
			}
			// Every word is accounted for, once: flag words plus operands
			// (less a "--" separator) add up to the input.
			n := len(cl.tokens()) + len(cl.operands)
			if n != len(args) && n != len(args)-1 {
				t.Fatalf("%q: %d words out of %d", args, n, len(args))
			}
		}
		parseGlobals(args)
	})
}

// flagsOf is the flag spec of a subcommand in the table.
func flagsOf(name string) *flagSpec {
	for _, c := range commands() {
		if c.name == name {
			return c.flags
		}
	}
	panic("no command " + name)
}
