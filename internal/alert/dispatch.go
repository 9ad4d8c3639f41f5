package alert

import (
	"errors"
	"os"
	"strings"
	"sync"
	"time"
)

// Limits bound the alerts one container can raise, so that a workload
// looping on a denied system call cannot flood the node's alert pipeline.
type Limits struct {
	// Dedup suppresses an alert identical to one raised within this window
	// (same container, rule, process image, system call and path).
	Dedup time.Duration
	// Burst alerts per container are let through per Window; the rest of
	// the window's alerts are counted and reported on the next one.
	Burst  int
	Window time.Duration
}

// DefaultLimits are the limits a Dispatcher uses when given none.
func DefaultLimits() Limits {
	return Limits{Dedup: 10 * time.Second, Burst: 20, Window: 10 * time.Second}
}

// maxTracked bounds the per-container state; the oldest is forgotten.
const maxTracked = 4096

// Dispatcher builds alerts from events and writes each to every sink. It
// is safe for concurrent use.
type Dispatcher struct {
	host   string
	sinks  []Sink
	limits Limits
	now    func() time.Time
	// notices is the notice file (Notice), nil for none.
	notices Sink

	mu         sync.Mutex
	seen       map[string]time.Time
	containers map[string]*window
}

type window struct {
	start      time.Time
	count      int
	suppressed int
}

// NewDispatcher writes to sinks; a zero Limits means DefaultLimits().
func NewDispatcher(sinks []Sink, limits Limits) *Dispatcher {
	if limits == (Limits{}) {
		limits = DefaultLimits()
	}
	host, _ := os.Hostname()
	return &Dispatcher{host: host, sinks: sinks, limits: limits, now: time.Now,
		seen: make(map[string]time.Time), containers: make(map[string]*window)}
}

// Emit raises the alert for e unless the container's limits hold it
// back; it reports whether the alert was written. An error means a sink
// failed (the others were still written).
func (d *Dispatcher) Emit(e Event) (bool, error) {
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	suppressed, ok := d.admit(e)
	if !ok {
		return false, nil
	}
	a := New(e, d.host)
	if suppressed > 0 {
		a.OutputFields["ward.suppressed"] = suppressed
	}
	line, err := a.Marshal()
	if err != nil {
		return false, err
	}
	var errs []error
	for _, s := range d.sinks {
		if err := s.Write(line); err != nil {
			errs = append(errs, err)
		}
	}
	return true, errors.Join(errs...)
}

// admit applies dedup and the per-container window; it returns how many
// alerts of the container were held back since the last one written.
func (d *Dispatcher) admit(e Event) (int, bool) {
	now := e.Time
	key := strings.Join([]string{e.Container.ID, e.Rule.ID, e.Process.ExePath, e.Syscall, e.Path}, "\x00")
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.containers[e.Container.ID]
	if w == nil {
		if len(d.containers) >= maxTracked {
			d.forget(now)
		}
		w = &window{start: now}
		d.containers[e.Container.ID] = w
	}
	if now.Sub(w.start) >= d.limits.Window {
		w.start, w.count = now, 0
	}
	if last, ok := d.seen[key]; ok && now.Sub(last) < d.limits.Dedup {
		w.suppressed++
		return 0, false
	}
	if w.count >= d.limits.Burst {
		w.suppressed++
		return 0, false
	}
	if len(d.seen) >= maxTracked {
		d.forget(now)
	}
	d.seen[key] = now
	w.count++
	n := w.suppressed
	w.suppressed = 0
	return n, true
}

// forget drops state older than the limits' windows; if nothing is that
// old, it drops everything (a bounded map matters more than a perfect
// count under a flood of distinct containers).
func (d *Dispatcher) forget(now time.Time) {
	for k, t := range d.seen {
		if now.Sub(t) >= d.limits.Dedup {
			delete(d.seen, k)
		}
	}
	for k, w := range d.containers {
		if now.Sub(w.start) >= d.limits.Window {
			delete(d.containers, k)
		}
	}
	if len(d.seen) >= maxTracked {
		clear(d.seen)
	}
	if len(d.containers) >= maxTracked {
		clear(d.containers)
	}
}

// Forget drops a container's state (it was deleted).
func (d *Dispatcher) Forget(containerID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.containers, containerID)
	for k := range d.seen {
		if strings.HasPrefix(k, containerID+"\x00") {
			delete(d.seen, k)
		}
	}
}

// NoticesTo sends Notice's lines to s (the notice file); call it before
// the dispatcher is used.
func (d *Dispatcher) NoticesTo(s Sink) { d.notices = s }

// Notice writes e to the notice file only, at priority Informational:
// something ward saw and judged not worth an alert, kept so that an
// operator can count it. It is not an alert: no sink of alerts sees it
// and it takes nothing from the container's alert budget; the caller
// bounds how often it writes one.
func (d *Dispatcher) Notice(e Event) error {
	if d.notices == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	e.Rule.Priority = PriorityInformational
	a := New(e, d.host)
	a.OutputFields["ward.notice"] = true
	line, err := a.Marshal()
	if err != nil {
		return err
	}
	return d.notices.Write(line)
}

// Close closes every sink.
func (d *Dispatcher) Close() error {
	var errs []error
	for _, s := range d.sinks {
		errs = append(errs, s.Close())
	}
	if d.notices != nil {
		errs = append(errs, d.notices.Close())
	}
	return errors.Join(errs...)
}
