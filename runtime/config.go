package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/backend"
	"github.com/ward-runtime/ward/bounded"
	"github.com/ward-runtime/ward/userns"
)

// DefaultConfigPath is read when neither --ward-config nor
// WARD_RUNTIME_CONFIG names a file. It may be absent.
const DefaultConfigPath = "/etc/ward/runtime.yaml"

// DefaultRoot is the state root when the caller gives no --root (runc's
// default is /run/runc; ward keeps its own so the two never mix).
const DefaultRoot = "/run/ward-runtime"

// maxConfigSize bounds the configuration file.
const maxConfigSize = 1 << 20

// Config is ward-runtime's configuration. Container managers call a runtime
// with runc's flags only, so everything ward-specific comes from this file,
// then the environment, then ward's own global flags (each overriding the
// one before).
type Config struct {
	// Root is the state root when the caller gives no --root.
	Root string `yaml:"root"`
	// Policy is the node's policy file; "" means ward's embedded default.
	Policy string `yaml:"policy"`
	// DecisionLog is the file decisions are appended to (one JSON line
	// each); "" disables it.
	DecisionLog string `yaml:"decisionLog"`
	// Backends are the runtime binaries and their flags.
	Backends backend.Config `yaml:"backends"`
	// RunscRoot is runsc's state directory; "" means <root>/runsc.
	RunscRoot string `yaml:"runscRoot"`
	// Userns is where the user-namespace ID pool and allocations are.
	Userns userns.Config `yaml:"userns"`
}

// defaultConfig is the configuration without a file.
func defaultConfig() Config {
	return Config{Root: DefaultRoot, Backends: backend.Defaults()}
}

// loadConfig builds the configuration from the file, the environment and
// the global flags. A file that is named but missing, or that does not
// parse, is an error: ward does not guess which policy an operator meant.
func loadConfig(g globals, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	path, named := DefaultConfigPath, false
	if p := getenv("WARD_RUNTIME_CONFIG"); p != "" {
		path, named = p, true
	}
	if g.wardConfig != "" {
		path, named = g.wardConfig, true
	}
	data, err := readConfigFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !named:
	case err != nil:
		return cfg, err
	default:
		if cfg, err = parseConfig(data, path); err != nil {
			return cfg, err
		}
	}
	set := func(dst *string, env, flag string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flag != "" {
			*dst = flag
		}
	}
	set(&cfg.Policy, "WARD_POLICY", g.wardPolicy)
	set(&cfg.DecisionLog, "WARD_DECISION_LOG", g.wardDecisionLog)
	set(&cfg.Backends.Runc, "WARD_RUNC", g.wardRunc)
	set(&cfg.Backends.Runsc, "WARD_RUNSC", g.wardRunsc)
	set(&cfg.RunscRoot, "WARD_RUNSC_ROOT", "")
	if v := getenv("WARD_RUNSC_FLAGS"); v != "" {
		cfg.Backends.RunscFlags = strings.Fields(v)
	}
	return cfg, nil
}

func readConfigFile(path string) ([]byte, error) {
	data, err := bounded.ReadFile(path, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("reading ward-runtime config: %w", err)
	}
	return data, nil
}

// parseConfig decodes a configuration file strictly: a misspelt key is an
// error, not a silently ignored setting.
func parseConfig(data []byte, source string) (Config, error) {
	cfg := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("parsing ward-runtime config %s: %w", source, err)
	}
	if cfg.Backends.Runc == "" || cfg.Backends.Runsc == "" {
		return cfg, fmt.Errorf("ward-runtime config %s: backends.runc and backends.runsc must not be empty", source)
	}
	if cfg.Root == "" {
		return cfg, fmt.Errorf("ward-runtime config %s: root must not be empty", source)
	}
	return cfg, nil
}
