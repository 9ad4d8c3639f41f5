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
	// Sensor runs ward's eBPF sensor (docs/sensors.md) beside the
	// supervisors, for what seccomp cannot see: unset or true, on; false,
	// off. One node-wide copy is shared by every supervisor of the state
	// directory, so a pod's shim pays for a pinned map, not for a copy.
	Sensor *bool `yaml:"sensor,omitempty"`
}

// SensorOn reports whether the eBPF sensor runs (on unless turned off).
func (c Config) SensorOn() bool {
	return c.Sensor == nil || *c.Sensor
}

// NoFile turns the alert file off.
const NoFile = "none"

// FileName is the alert file's name in the state directory.
const FileName = "alerts.jsonl"

// NoticeFileName is the notice file's name in the state directory: what
// ward saw and judged not worth an alert (a build job running what the
// image's toolchain built: docs/sensors.md), in the same Falco format at
// priority Informational, counted, never routed (`ward alerts --all`).
const NoticeFileName = "notices.jsonl"

// NoticePath is the notice file of a node whose state directory is
// stateDir.
func NoticePath(stateDir string) string { return filepath.Join(stateDir, NoticeFileName) }

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
	d := NewDispatcher(sinks, Limits{})
	if stateDir == "" {
		return d, nil
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		d.Close()
		return nil, fmt.Errorf("creating the state directory for notices: %w", err)
	}
	n, err := OpenFile(NoticePath(stateDir))
	if err != nil {
		d.Close()
		return nil, err
	}
	d.NoticesTo(n)
	return d, nil
}
