package supervisor

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/policy"
)

// ContainerOf is what the supervisor keeps of an admitted container whose
// first process is pid.
func ContainerOf(ad *admission.Admission, adm *admission.Admitter, pid int) Container {
	w := ad.Entry.Report.Workload
	c := Container{
		Container: alert.Container{ID: ad.ID, Name: w.Container, PodName: w.Pod, PodNamespace: w.Namespace, Image: w.Image},
		Decision: alert.Decision{ID: ad.Entry.ID, Action: string(ad.Verdict.Action), Rule: ad.Verdict.Rule,
			Backend: string(ad.Runtime.Name), Door: ad.Entry.Door},
		PID: pid,
	}
	if ad.Verdict.Audit {
		c.Decision.Action = "audit"
	}
	if ad.Bundle != nil {
		c.Bundle = ad.Bundle.Dir
		if s := ad.Bundle.Spec; s != nil && s.Linux != nil {
			c.CgroupsPath = s.Linux.CgroupsPath
		}
		if s := ad.Bundle.Spec; s != nil {
			for _, m := range s.Mounts {
				if m.Destination == landlock.ProfileSeccompPath {
					c.Profile = m.Source
				}
			}
			c.StrictDrift = s.Annotations[policy.AnnotationDrift] == policy.DriftStrict
		}
	}
	det := adm.Policy().Detection
	c.Detection = func() policy.Detection { return det }
	return c
}

// Door is a front door's supervisor for the containers it runs (a shim's
// pod), started on first use with the node's alert sinks.
type Door struct {
	// Socket is where to listen.
	Socket string
	// Log opens the door's log, for alerts when the configuration asks
	// (alerts.log); it is called only then.
	Log  func() io.Writer
	Logf func(format string, args ...any)

	mu      sync.Mutex
	sup     *Supervisor
	reg     *Registry
	sensors *Sensors
}

// Start starts the supervisor (once) and returns its socket, for
// admission.Options.Supervisor.
func (d *Door) Start(cfg nodeconfig.Config) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sup != nil {
		return d.sup.Socket(), nil
	}
	var log io.Writer
	if cfg.Alerts.Log && d.Log != nil {
		log = d.Log()
	}
	alerts, err := cfg.Alerts.Open(cfg.StateDir, log)
	if err != nil {
		return "", fmt.Errorf("opening the alert sinks: %w", err)
	}
	reg := NewRegistry()
	sup, err := Listen(Options{Socket: d.Socket, Resolve: reg.Resolve, Alerts: alerts, Logf: d.Logf,
		Respond: Responder{StateDir: cfg.StateDir, DecisionLog: cfg.LogPath(), Logf: d.Logf}.Respond})
	if err != nil {
		alerts.Close()
		return "", err
	}
	d.sup, d.reg = sup, reg
	d.sensors = &Sensors{Alerts: alerts, Respond: sup.o.Respond, Logf: d.Logf, StateDir: cfg.StateDir}
	if cfg.Alerts.SensorOn() {
		d.sensors.Start()
	}
	return sup.Socket(), nil
}

// Add attributes a created container's listeners to it.
func (d *Door) Add(c Container) {
	d.mu.Lock()
	reg, sensors := d.reg, d.sensors
	d.mu.Unlock()
	if reg != nil {
		reg.Add(c, c.PID)
		sensors.Add(c)
	}
}

// Remove forgets a deleted container.
func (d *Door) Remove(id string) {
	d.mu.Lock()
	reg, sensors := d.reg, d.sensors
	d.mu.Unlock()
	if reg != nil {
		reg.Remove(id)
		sensors.Remove(id)
	}
}

// Close stops the supervisor and closes the alert sinks.
func (d *Door) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sup == nil {
		return nil
	}
	err := errors.Join(d.sup.Close(), d.sensors.Close())
	d.sup.o.Alerts.Close()
	d.sup = nil
	return err
}

// Uses reports whether a hardened spec hands its listener to a
// supervisor (the seccomp step mounted the socket).
func Uses(s *specs.Spec) bool {
	return s != nil && slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == landlock.SupervisorPath })
}
