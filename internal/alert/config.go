package alert

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Config is the node's alert routing (the `alerts` section of ward.yaml).
type Config struct {
	// File is where alerts are appended, one JSON line each; "" means
	// <stateDir>/alerts.jsonl, "none" turns the file off.
	File string `yaml:"file,omitempty"`
	// HTTP is an endpoint every alert is POSTed to as Falco's JSON
	// (Falcosidekick's root URL, e.g. http://falcosidekick:2801/).
	HTTP string `yaml:"http,omitempty"`
	// Log also writes every alert to the front door's log (the shim's
	// log, the supervisor's stderr).
	Log bool `yaml:"log,omitempty"`
	// Sensor loads ward's eBPF sensor (docs/sensors.md) in each
	// supervisor, for what seccomp cannot see. Off by default: each
	// supervisor (one per pod under the shim, one per container under
	// ward-runtime) loads its own copy, measured at about 40 MiB of
	// anonymous memory per pod shim (kernel BTF) and a slower pod start;
	// one node-wide sensor shared by all supervisors is the next step.
	Sensor bool `yaml:"sensor,omitempty"`
}

// NoFile turns the alert file off.
const NoFile = "none"

// FileName is the alert file's name in the state directory.
const FileName = "alerts.jsonl"

// httpTimeout bounds one POST.
const httpTimeout = 3 * time.Second

// Path is the alert file for a node whose state directory is stateDir,
// "" when the file is off.
func (c Config) Path(stateDir string) string {
	switch c.File {
	case NoFile:
		return ""
	case "":
		return filepath.Join(stateDir, FileName)
	}
	return c.File
}

// Validate checks the section, naming the field at fault.
func (c Config) Validate() error {
	if c.File != "" && c.File != NoFile && !filepath.IsAbs(c.File) {
		return fmt.Errorf("alerts.file: %q is not an absolute path (or %q)", c.File, NoFile)
	}
	if c.HTTP != "" {
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("alerts.http: %q is not an http(s) URL", c.HTTP)
		}
	}
	return nil
}

// Open builds the node's dispatcher: the file, the endpoint, and log
// when the configuration asks for the door's log.
func (c Config) Open(stateDir string, log io.Writer) (*Dispatcher, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var sinks []Sink
	if p := c.Path(stateDir); p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return nil, fmt.Errorf("creating alert directory: %w", err)
		}
		f, err := OpenFile(p)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, f)
	}
	if c.HTTP != "" {
		sinks = append(sinks, NewHTTP(c.HTTP, httpTimeout))
	}
	if c.Log && log != nil {
		sinks = append(sinks, NewStream(log))
	}
	return NewDispatcher(sinks, Limits{}), nil
}
