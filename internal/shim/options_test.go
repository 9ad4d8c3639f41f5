package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/typeurl/v2"
)

func anyOf(t *testing.T, v any) typeurl.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDecodeOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "opts.toml")
	if err := os.WriteFile(path, []byte("BinaryName = \"/opt/runc\"\nWardConfig = \"/etc/ward/a.yaml\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		in         typeurl.Any
		binary     string
		root       string
		systemd    bool
		wardConfig string
		err        string
	}{
		{name: "none", in: nil},
		{name: "runc options", in: anyOf(t, &runcoptions.Options{BinaryName: "/usr/bin/runc", Root: "/run/r", SystemdCgroup: true}),
			binary: "/usr/bin/runc", root: "/run/r", systemd: true},
		{name: "runtimeoptions body", in: anyOf(t, &runtimeoptions.Options{ConfigBody: []byte(
			"BinaryName = \"/usr/bin/runc\"\nRoot = \"/run/w\"\nSystemdCgroup = true\nWardConfig = \"/etc/ward/audit.yaml\"\nTypeUrl = \"\"\n")}),
			binary: "/usr/bin/runc", root: "/run/w", systemd: true, wardConfig: "/etc/ward/audit.yaml"},
		{name: "runtimeoptions empty body", in: anyOf(t, &runtimeoptions.Options{})},
		{name: "runtimeoptions ConfigPath", in: anyOf(t, &runtimeoptions.Options{ConfigPath: path}),
			binary: "/opt/runc", wardConfig: "/etc/ward/a.yaml"},
		{name: "unknown key", in: anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("BinaryNmae = \"runc\"\n")}), err: "BinaryNmae"},
		{name: "bad toml", in: anyOf(t, &runtimeoptions.Options{ConfigBody: []byte("BinaryName = \n")}), err: "ConfigBody"},
		{name: "missing ConfigPath", in: anyOf(t, &runtimeoptions.Options{ConfigPath: path + ".missing"}), err: "ConfigPath"},
		{name: "other type", in: anyOf(t, &types.Empty{}), err: "unsupported type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := DecodeOptions(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Runc == nil {
				t.Fatal("no runc options")
			}
			if o.Runc.BinaryName != tc.binary || o.Runc.Root != tc.root || o.Runc.SystemdCgroup != tc.systemd || o.WardConfig != tc.wardConfig {
				t.Errorf("got %+v %q", o.Runc, o.WardConfig)
			}
		})
	}
}

func TestParseCall(t *testing.T) {
	c := parseCall([]string{"--root", "/r/k8s.io", "--log", "/b/log.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "abc"})
	if c.sub != "create" || c.id() != "abc" || c.flag("--bundle") != "/b" || c.flag("--pid-file") != "/b/init.pid" || c.globalFlag("--root") != "/r/k8s.io" {
		t.Errorf("%+v", c)
	}
	if got := c.rendezvous(); got != "/r/k8s.io/ward-start/abc" {
		t.Errorf("rendezvous %s", got)
	}
	if c := parseCall([]string{"--root", "/r", "kill", "--all", "abc", "9"}); c.sub != "kill" {
		t.Errorf("%+v", c)
	}
	if c := parseCall([]string{"--version"}); c.sub != "" {
		t.Errorf("%+v", c)
	}
}

func TestRunscWrapperScript(t *testing.T) {
	s, err := runscWrapperScript("/usr/bin/shim it's", "/opt/runsc", []string{"--platform=systrap"})
	if err != nil {
		t.Fatal(err)
	}
	want := `exec '/usr/bin/shim it'\''s' --ward-runsc-wrapper '/opt/runsc' '["--platform=systrap"]' "$@"`
	if !strings.Contains(s, want) {
		t.Errorf("script:\n%s\nwant line:\n%s", s, want)
	}
}
