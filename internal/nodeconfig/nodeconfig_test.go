package nodeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/userns"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("absent default", func(t *testing.T) {
		c, err := Load(Sources{Getenv: env(map[string]string{EnvConfig: ""})})
		if err != nil {
			t.Skipf("this machine has %s: %v", DefaultPath, err)
		}
		if c.StateDir != DefaultStateDir || c.LogPath() != DefaultStateDir+"/decisions.jsonl" || c.Policy != "" ||
			c.Runtime.Root != DefaultRuntimeRoot || c.Userns.StateDir != userns.DefaultStateDir {
			t.Errorf("defaults: %+v", c)
		}
	})
	t.Run("named file must exist", func(t *testing.T) {
		if _, err := Load(Sources{File: filepath.Join(dir, "none.yaml")}); err == nil {
			t.Error("missing named config accepted")
		}
	})
	t.Run("empty file", func(t *testing.T) {
		c, err := Load(Sources{File: write("empty.yaml", "")})
		if err != nil || c.StateDir != DefaultStateDir {
			t.Errorf("%+v %v", c, err)
		}
	})
	t.Run("values", func(t *testing.T) {
		c, err := Load(Sources{File: write("v.yaml", "stateDir: /s\npolicy: /p.yaml\nbackends:\n  gvisor: {binary: /bin/runsc, flags: [--platform=ptrace]}\n")})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := c.Table()
		if c.StateDir != "/s" || c.LogPath() != "/s/decisions.jsonl" || c.Policy != "/p.yaml" || tb["gvisor"].Binary != "/bin/runsc" ||
			len(tb["gvisor"].Flags) != 1 || tb["runc"].Binary != "runc" || c.RunscRoot() != "/s/runsc" || c.PodDir() != "/s/pods" {
			t.Errorf("%+v", c)
		}
	})
	t.Run("errors name the key", func(t *testing.T) {
		for file, want := range map[string]string{
			"stateDri: /s\n":                       "stateDri",
			"policy: relative.yaml\n":              "policy",
			"backends:\n  vm: {binary: /x}\n":      "backends.vm.kind",
			"decisionLog: log.jsonl\n":             "decisionLog",
			"policy: /a.yaml\n---\npolicy: /b\n":   "more than one YAML document",
			"backends:\n  runc: {kind: bogus}\n":   "backends.runc.kind",
			"backends:\n  gvisor: {dialect: x}\n":  "dialect",
			"runtime:\n  root: run/ward-runtime\n": "runtime.root",
		} {
			_, err := Load(Sources{File: write("bad.yaml", file)})
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: err = %v, want one naming %q", file, err, want)
			}
		}
	})
	t.Run("precedence: file < environment < flags", func(t *testing.T) {
		f := write("p.yaml", "policy: /file.yaml\nbackends:\n  runc: {binary: /file/runc}\n")
		e := map[string]string{EnvConfig: f, EnvPolicy: "/env.yaml", EnvRunc: "/env/runc", EnvRunscFlags: "--a --b"}
		c, err := Load(Sources{Getenv: env(e)})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := c.Table()
		if c.Policy != "/env.yaml" || tb["runc"].Binary != "/env/runc" || strings.Join(tb["gvisor"].Flags, " ") != "--a --b" || c.Source != f {
			t.Errorf("environment: %+v %+v", c, tb["gvisor"])
		}
		c, err = Load(Sources{Getenv: env(e), Flags: Overrides{Policy: "/flag.yaml", Runc: "/flag/runc"}})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ = c.Table()
		if c.Policy != "/flag.yaml" || tb["runc"].Binary != "/flag/runc" {
			t.Errorf("flags: %+v", c)
		}
		// A handler's (or --ward-config's) file beats $WARD_CONFIG.
		h := write("h.yaml", "policy: /handler.yaml\n")
		c, err = Load(Sources{File: h, Getenv: env(map[string]string{EnvConfig: f})})
		if err != nil || c.Policy != "/handler.yaml" {
			t.Errorf("handler file: %+v %v", c, err)
		}
	})
	// The one test of the deprecated names ($WARD_SHIM_CONFIG,
	// $WARD_RUNTIME_CONFIG, shim.yaml, runtime.yaml): every harness
	// configures the doors through $WARD_CONFIG.
	t.Run("legacy files and variables", func(t *testing.T) {
		shim := write("shim.yaml", "stateDir: /s\nbackends:\n  runsc: /bin/runsc\n  runscFlags: [--platform=ptrace]\n  kataShim: /k\n")
		c, err := Load(Sources{Getenv: env(map[string]string{EnvLegacyShim: shim}), Legacy: LegacyShimPath})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := c.Table()
		if c.StateDir != "/s" || tb["gvisor"].Binary != "/bin/runsc" || tb["kata"].Binary != "/k" || len(c.Notes) == 0 {
			t.Errorf("legacy shim.yaml: %+v", c)
		}
		rt := write("runtime.yaml", "root: /r\nrunscRoot: /rs\ndecisionLog: /l.jsonl\n")
		c, err = Load(Sources{Getenv: env(map[string]string{EnvLegacyRuntime: rt}), Legacy: LegacyRuntimePath})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ = c.Table()
		if c.Runtime.Root != "/r" || tb["gvisor"].Root != "/rs" || c.LogPath() != "/l.jsonl" {
			t.Errorf("legacy runtime.yaml: %+v", c)
		}
		// Each binary honours only its own deprecated variable.
		if c, err := Load(Sources{Getenv: env(map[string]string{EnvLegacyShim: shim}), Legacy: LegacyRuntimePath}); err == nil && c.StateDir == "/s" {
			t.Error("ward-runtime read the shim's deprecated variable")
		}
	})
	t.Run("marshal round trip", func(t *testing.T) {
		c := Config{Policy: "/etc/ward/policy.yaml", Backends: map[string]backend.Spec{"gvisor": {Binary: "/usr/bin/runsc"}}}
		out, err := c.Marshal("written by a test")
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out, "x")
		if err != nil || back.Policy != c.Policy || back.Backends["gvisor"].Binary != "/usr/bin/runsc" {
			t.Errorf("%s\n%+v %v", out, back, err)
		}
		if !strings.HasPrefix(string(out), "# written by a test\n") {
			t.Errorf("header missing:\n%s", out)
		}
	})
}
