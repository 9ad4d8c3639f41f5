// Package nodeconfig is ward's one node configuration. Every binary (the
// shim, ward-runtime, the ward CLI) reads the same file, with one schema,
// one set of defaults and one precedence order:
//
//	built-in defaults < file < environment < flags
//
// The file is /etc/ward/ward.yaml unless a handler's WardConfig option,
// ward-runtime's --ward-config or $WARD_CONFIG names another; the default
// path may be absent (all defaults), a named file must exist. `ward install`
// writes it by marshalling Config. The table of every setting, variable and
// flag is in docs/configuration.md.
//
// The files of earlier releases (/etc/ward/shim.yaml, /etc/ward/runtime.yaml,
// named by $WARD_SHIM_CONFIG and $WARD_RUNTIME_CONFIG) are still read, with
// a deprecation note, when no ward.yaml is given.
package nodeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/userns"
)

// DefaultPath is the node configuration file.
const DefaultPath = "/etc/ward/ward.yaml"

// DefaultStateDir holds the decision log, pod records, runsc's root and
// the user-namespace allocator when the configuration does not say
// otherwise.
const DefaultStateDir = "/run/ward"

// DefaultRuntimeRoot is ward-runtime's state root when the caller gives no
// --root (runc's is /run/runc; ward keeps its own so the two never mix).
const DefaultRuntimeRoot = "/run/ward-runtime"

// NoLog as decisionLog turns the decision log off.
const NoLog = "none"

// Environment variables. Each overrides the file's setting of the same
// meaning for every binary alike.
const (
	EnvConfig      = "WARD_CONFIG"       // the configuration file
	EnvPolicy      = "WARD_POLICY"       // policy
	EnvDecisionLog = "WARD_DECISION_LOG" // decisionLog
	EnvStateDir    = "WARD_STATE_DIR"    // stateDir
	EnvRunc        = "WARD_RUNC"         // backends.runc.binary
	EnvRunsc       = "WARD_RUNSC"        // backends.gvisor.binary
	EnvRunscFlags  = "WARD_RUNSC_FLAGS"  // backends.gvisor.flags, space-separated
)

// Deprecated names of the configuration file, read for one release.
const (
	LegacyShimPath    = "/etc/ward/shim.yaml"
	LegacyRuntimePath = "/etc/ward/runtime.yaml"
	EnvLegacyShim     = "WARD_SHIM_CONFIG"
	EnvLegacyRuntime  = "WARD_RUNTIME_CONFIG"
)

const maxFile = 1 << 20

// Config is the node configuration.
type Config struct {
	// Policy is the node's policy file; "" means ward's embedded default.
	Policy string `yaml:"policy,omitempty"`
	// StateDir holds pod records, the decision log by default, runsc's
	// root and the runsc wrapper ("" means DefaultStateDir).
	StateDir string `yaml:"stateDir,omitempty"`
	// DecisionLog is the file every decision is appended to, one JSON line
	// each ("" means <stateDir>/decisions.jsonl; NoLog turns it off).
	DecisionLog string `yaml:"decisionLog,omitempty"`
	// Backends change the built-in backends (binary, flags, root) or add
	// new ones (backend.Spec), by name.
	Backends map[string]backend.Spec `yaml:"backends,omitempty"`
	// Userns is where the user-namespace ID pool and allocations are.
	Userns userns.Config `yaml:"userns,omitempty"`
	// Runtime holds what only ward-runtime uses.
	Runtime Runtime `yaml:"runtime,omitempty"`
	// Alerts routes run-time alerts (docs/detection.md).
	Alerts alert.Config `yaml:"alerts,omitempty"`

	// Source is the file the configuration came from, "" for defaults.
	Source string `yaml:"-"`
	// Notes are deprecation notices about how it was found, for the
	// binary to log once.
	Notes []string `yaml:"-"`
}

// Runtime is ward-runtime's own section.
type Runtime struct {
	// Root is the state root when the caller gives no --root.
	Root string `yaml:"root,omitempty"`
}

// Overrides are a binary's flags, the last word on each setting; "" leaves
// a setting alone.
type Overrides struct {
	Policy, DecisionLog, StateDir, Runc, Runsc string
}

// Sources say where a binary's configuration comes from.
type Sources struct {
	// File names the file outright (a handler's WardConfig option,
	// --ward-config); "" looks at $WARD_CONFIG, then DefaultPath.
	File string
	// Getenv reads the environment; nil reads nothing.
	Getenv func(string) string
	// Flags are the binary's own flags.
	Flags Overrides
	// Legacy is the deprecated file of this binary's earlier releases,
	// read when no ward.yaml is found: LegacyShimPath or LegacyRuntimePath.
	Legacy string
}

func (s Sources) getenv(k string) string {
	if s.Getenv == nil {
		return ""
	}
	return s.Getenv(k)
}

// Load builds the configuration from the sources. A file that is named but
// missing, or that does not parse, is an error: ward does not guess which
// policy an operator meant.
func Load(src Sources) (Config, error) {
	c, err := loadFile(src)
	if err != nil {
		return Config{}, err
	}
	set := func(dst *string, env, flag string) {
		if v := src.getenv(env); v != "" {
			*dst = v
		}
		if flag != "" {
			*dst = flag
		}
	}
	set(&c.Policy, EnvPolicy, src.Flags.Policy)
	set(&c.DecisionLog, EnvDecisionLog, src.Flags.DecisionLog)
	set(&c.StateDir, EnvStateDir, src.Flags.StateDir)
	runc, runsc := "", ""
	set(&runc, EnvRunc, src.Flags.Runc)
	set(&runsc, EnvRunsc, src.Flags.Runsc)
	c.setBackend("runc", func(s *backend.Spec) { s.Binary = runc }, runc != "")
	c.setBackend("gvisor", func(s *backend.Spec) { s.Binary = runsc }, runsc != "")
	if v := src.getenv(EnvRunscFlags); v != "" {
		c.setBackend("gvisor", func(s *backend.Spec) { s.Flags = strings.Fields(v) }, true)
	}
	return c.withDefaults(), c.validate()
}

func (c *Config) setBackend(name string, fn func(*backend.Spec), do bool) {
	if !do {
		return
	}
	if c.Backends == nil {
		c.Backends = map[string]backend.Spec{}
	}
	s := c.Backends[name]
	fn(&s)
	c.Backends[name] = s
}

// loadFile finds and parses the file.
func loadFile(src Sources) (Config, error) {
	path, named := src.File, src.File != ""
	if !named {
		if p := src.getenv(EnvConfig); p != "" {
			path, named = p, true
		}
	}
	if !named {
		// The binary's deprecated variable names a file as firmly as
		// WARD_CONFIG.
		if v := legacyVarFor(src.Legacy); v != "" && src.getenv(v) != "" {
			c, err := parseFile(src.getenv(v), true)
			if err == nil {
				c.Notes = append(c.Notes, fmt.Sprintf("$%s is deprecated: name the file with $%s (or move it to %s)", v, EnvConfig, DefaultPath))
			}
			return c, err
		}
		path = DefaultPath
	}
	c, err := parseFile(path, named)
	if err != nil || named || c.Source != "" || src.Legacy == "" {
		return c, err
	}
	// No ward.yaml: the binary's file from an earlier release, if any.
	c, err = parseFile(src.Legacy, false)
	if err == nil && c.Source != "" {
		c.Notes = append(c.Notes, fmt.Sprintf("%s is deprecated: `ward install` writes %s; move its settings there", src.Legacy, DefaultPath))
	}
	return c, err
}

func legacyVarFor(legacyPath string) string {
	switch legacyPath {
	case LegacyShimPath:
		return EnvLegacyShim
	case LegacyRuntimePath:
		return EnvLegacyRuntime
	}
	return ""
}

// parseFile reads path; an absent file that was not named gives an empty
// configuration with no Source.
func parseFile(path string, named bool) (Config, error) {
	data, err := bounded.ReadFile(path, maxFile)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading ward node configuration: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

// Parse decodes a configuration strictly: a misspelt key is an error, not a
// silently ignored setting. A file in the format of an earlier release is
// read too, with a deprecation note.
func Parse(data []byte, source string) (Config, error) {
	var c Config
	err := decodeStrict(data, &c)
	if err != nil {
		var old legacy
		if lerr := decodeStrict(data, &old); lerr == nil {
			c = old.config()
			c.Notes = append(c.Notes, fmt.Sprintf("%s is in the format of ward's shim.yaml/runtime.yaml, which is deprecated: see docs/configuration.md", source))
			err = nil
		}
	}
	if err != nil {
		return Config{}, fmt.Errorf("parsing ward node configuration %s: %w", source, err)
	}
	c.Source = source
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("ward node configuration %s: %w", source, err)
	}
	return c, nil
}

// decodeStrict decodes one YAML document with unknown keys refused; an
// empty file is all defaults, a second document an error.
func decodeStrict(data []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document; a node configuration is one")
	}
	return nil
}

func (c *Config) validate() error {
	if _, err := c.Table(); err != nil {
		return err
	}
	for _, p := range []struct{ name, v string }{
		{"policy", c.Policy}, {"stateDir", c.StateDir}, {"runtime.root", c.Runtime.Root},
		{"userns.stateDir", c.Userns.StateDir}, {"userns.subuid", c.Userns.SubUID}, {"userns.subgid", c.Userns.SubGID},
	} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			return fmt.Errorf("%s: %q is not an absolute path", p.name, p.v)
		}
	}
	if c.DecisionLog != "" && c.DecisionLog != NoLog && !filepath.IsAbs(c.DecisionLog) {
		return fmt.Errorf("decisionLog: %q is not an absolute path (or %q)", c.DecisionLog, NoLog)
	}
	return c.Alerts.Validate()
}

func (c Config) withDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Runtime.Root == "" {
		c.Runtime.Root = DefaultRuntimeRoot
	}
	// The allocator stays where it is whatever stateDir says: blocks that
	// belong to writable layers outlive reboots (userns.DefaultStateDir).
	c.Userns = c.Userns.WithDefaults()
	return c
}

// Table is the node's backends: ward's built-in ones with the file's
// changes and additions.
func (c *Config) Table() (backend.Table, error) {
	return backend.Builtin().Merge(c.Backends)
}

// LogPath is the decision log's path, "" when it is off.
func (c *Config) LogPath() string {
	switch c.DecisionLog {
	case NoLog:
		return ""
	case "":
		return filepath.Join(c.StateDir, "decisions.jsonl")
	}
	return c.DecisionLog
}

// AlertPath is the node's alert file, "" when it is off.
func (c *Config) AlertPath() string { return c.Alerts.Path(c.StateDir) }

// PodDir holds one record per pod (admission.PodStore).
func (c *Config) PodDir() string { return filepath.Join(c.StateDir, "pods") }

// RunscRoot is gVisor's state root for the shim: separate from runc's,
// since the two runtimes' state files differ.
func (c *Config) RunscRoot() string { return filepath.Join(c.StateDir, "runsc") }

// Marshal renders c as a file `ward install` writes: only what differs from
// the defaults, so that a later release's defaults still apply.
func (c Config) Marshal(header string) ([]byte, error) {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		if header != "" {
			fmt.Fprintf(&b, "# %s\n", line)
		}
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encoding ward node configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding ward node configuration: %w", err)
	}
	out := b.Bytes()
	if _, err := Parse(out, "(written)"); err != nil {
		return nil, err
	}
	return out, nil
}

// legacy is the union of shim.yaml's and runtime.yaml's schemas.
type legacy struct {
	Root        string `yaml:"root"`
	Policy      string `yaml:"policy"`
	StateDir    string `yaml:"stateDir"`
	DecisionLog string `yaml:"decisionLog"`
	RunscRoot   string `yaml:"runscRoot"`
	Backends    struct {
		Runc       string   `yaml:"runc"`
		Runsc      string   `yaml:"runsc"`
		RunscFlags []string `yaml:"runscFlags"`
		KataShim   string   `yaml:"kataShim"`
	} `yaml:"backends"`
	Userns userns.Config `yaml:"userns"`
}

func (l legacy) config() Config {
	c := Config{Policy: l.Policy, StateDir: l.StateDir, DecisionLog: l.DecisionLog, Userns: l.Userns, Runtime: Runtime{Root: l.Root}}
	c.setBackend("runc", func(s *backend.Spec) { s.Binary = l.Backends.Runc }, l.Backends.Runc != "")
	c.setBackend("gvisor", func(s *backend.Spec) { s.Binary = l.Backends.Runsc }, l.Backends.Runsc != "")
	c.setBackend("gvisor", func(s *backend.Spec) { s.Flags = l.Backends.RunscFlags }, l.Backends.RunscFlags != nil)
	c.setBackend("gvisor", func(s *backend.Spec) { s.Root = l.RunscRoot }, l.RunscRoot != "")
	c.setBackend("kata", func(s *backend.Spec) { s.Binary = l.Backends.KataShim }, l.Backends.KataShim != "")
	return c
}
