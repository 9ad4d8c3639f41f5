package shim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/backend"
	"github.com/ward-runtime/ward/bounded"
	"github.com/ward-runtime/ward/userns"
)

// DefaultConfigPath is where the shim looks for its configuration when the
// handler names none and WARD_SHIM_CONFIG is unset. A missing file means
// the defaults.
const DefaultConfigPath = "/etc/ward/shim.yaml"

// ConfigEnv names a configuration file for every ward handler of one
// containerd: the shim inherits containerd's environment.
const ConfigEnv = "WARD_SHIM_CONFIG"

// DefaultStateDir holds the decision log, per-pod state and runsc's root
// when the configuration does not say otherwise.
const DefaultStateDir = "/run/ward"

const maxConfigFile = 1 << 20

// Config is the shim's node configuration (YAML).
//
//	policy: /etc/ward/policy.yaml        # "" = the policy embedded in ward
//	stateDir: /run/ward                  # pod state, runsc root
//	decisionLog: /var/log/ward/shim.jsonl # default <stateDir>/decisions.jsonl
//	backends: {runc: runc, runsc: runsc, runscFlags: [], kataShim: containerd-shim-kata-v2}
type Config struct {
	Policy      string         `yaml:"policy"`
	StateDir    string         `yaml:"stateDir"`
	DecisionLog string         `yaml:"decisionLog"`
	Backends    backend.Config `yaml:"backends"`
	// Userns is where the user-namespace ID pool and allocations are.
	Userns userns.Config `yaml:"userns"`
	// Source is the file the configuration came from, "" for defaults.
	Source string `yaml:"-"`
}

// ConfigPath chooses the configuration file: the handler's WardConfig
// option, else $WARD_SHIM_CONFIG, else DefaultConfigPath. The bool is false
// when the file is the default path, which may be absent.
func ConfigPath(handler string) (string, bool) {
	if handler != "" {
		return handler, true
	}
	if p := os.Getenv(ConfigEnv); p != "" {
		return p, true
	}
	return DefaultConfigPath, false
}

// LoadConfig reads the configuration at path. A named file must exist; the
// default path may be absent, which gives the defaults.
func LoadConfig(path string, required bool) (Config, error) {
	data, err := bounded.ReadFile(path, maxConfigFile)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return withDefaults(Config{}), nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading ward shim config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file (io.EOF) means all defaults.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parsing ward shim config %s: %w", path, err)
	}
	c.Source = path
	return withDefaults(c), nil
}

func withDefaults(c Config) Config {
	d := backend.Defaults()
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.DecisionLog == "" {
		c.DecisionLog = filepath.Join(c.StateDir, "decisions.jsonl")
	}
	if c.Backends.Runc == "" {
		c.Backends.Runc = d.Runc
	}
	if c.Backends.Runsc == "" {
		c.Backends.Runsc = d.Runsc
	}
	if c.Backends.RunscFlags == nil {
		c.Backends.RunscFlags = d.RunscFlags
	}
	if c.Backends.KataShim == "" {
		c.Backends.KataShim = d.KataShim
	}
	return c
}

// RunscRoot is runsc's state root: separate from runc's, since the two
// runtimes' state files differ and each must find only its own.
func (c *Config) RunscRoot() string { return filepath.Join(c.StateDir, "runsc") }

// PodDir holds one file per pod with its sandbox's decision.
func (c *Config) PodDir() string { return filepath.Join(c.StateDir, "pods") }
