package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/sensor"
	"github.com/ward-runtime/ward/policy"
)

// Sensors is a supervisor's share of ward's node-wide eBPF sensor
// (internal/sensor): what seccomp cannot see (writes to release_agent,
// core_pattern, /proc/sys, sysrq-trigger; host-device opens; drift) raises
// an alert under the rule of the same catalog, and a freeze or kill
// response acts as it does for a system call. The call itself has
// happened (no BPF-LSM to deny it), so an attempt the kernel let through
// is reported "allow", one it refused "deny".
//
// One program serves every supervisor of a state directory: the first to
// need it loads and pins it (sensor.Open), the others only add their
// containers' cgroups to its pinned map, with a record (Record) that says
// whose they are. One supervisor at a time is the reader (sensor.Lead):
// it drains the ring buffer for all of them and raises each alert
// through its own sinks, attributed from the record; when it ends, a
// waiting supervisor takes over.
//
// The sensor opens in the background as soon as the supervisor starts (a
// front door starts it with its first container), and a container added
// while it opens waits for it, up to openWait: its workload's first
// instruction runs watched, so an escape attempted at once is not missed
// (it was, while the sensor opened after the first container). A
// container the wait gave up on is watched once the sensor is open. Where
// it cannot load, one warning says why and the seccomp supervisor works on
// alone.
type Sensors struct {
	Alerts  *alert.Dispatcher
	Respond func(c Container, e alert.Event, r policy.Response)
	Logf    func(format string, args ...any)
	// StateDir is ward's state directory (the sensor's locks and
	// records).
	StateDir string

	mu      sync.Mutex
	s       *sensor.Shared
	reader  *sensor.Reader
	failed  bool
	closed  bool
	pending map[string]pendingWatch
	byID    map[string]uint64
	// opened is closed once the background open has finished (nil: not
	// started).
	opened chan struct{}
	// readDone is closed once the reader's loop and sweeps have stopped
	// using s (set with reader).
	readDone chan struct{}
	// stopLead ends a wait for the reader's role (Close).
	stopLead context.CancelFunc
	// unified is the host's cgroup v2 hierarchy, found once (a read of
	// the mount table per container was most of Add's own time).
	unified *freezer.Hierarchy
}

// pendingWatch is a container added before the sensor was open.
type pendingWatch struct {
	c   Container
	dir string
}

// Record is what a supervisor tells another of a container it runs: the
// shared sensor's record (read by whichever supervisor is the reader),
// and what ward-runtime hands its per-container supervisor.
type Record struct {
	Container Container        `json:"container"`
	Detection policy.Detection `json:"detection"`
}

// RecordOf is c's record.
func RecordOf(c Container) Record {
	r := Record{Container: c}
	if c.Detection != nil {
		r.Detection = c.Detection()
	}
	return r
}

// Unpack is the record's container, with its detection policy.
func (r Record) Unpack() Container {
	c, det := r.Container, r.Detection
	c.Detection = func() policy.Detection { return det }
	return c
}

// sensorQuiet is how long a rule stays quiet for a container after it
// alerted: one attempt touches many files (every hierarchy's
// notify_on_release, every sysctl of a script), and the container's alert
// budget (alert.Limits) is better spent on the next rule than on the same
// one again.
const sensorQuiet = 10 * time.Second

// closeWait bounds how long Close waits for an open under way.
const closeWait = 10 * time.Second

// openWait bounds how long Add waits for the sensor to open: loading it
// the first time on a node takes tens of milliseconds idle and about a
// second on a busy node (the verifier), opening it from its pins a few
// milliseconds. Past it the container runs and is watched once the
// sensor is open.
const openWait = 5 * time.Second

// sweepEvery is how often the reader removes the cgroups of containers
// whose supervisor died without removing them.
const sweepEvery = 30 * time.Second

// Start turns the sensor on and starts opening it in the background.
func (ss *Sensors) Start() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pending, ss.byID = map[string]pendingWatch{}, map[string]uint64{}
	if ss.opened == nil {
		ss.opened = make(chan struct{})
		go ss.open(ss.opened)
	}
}

func (ss *Sensors) open(done chan struct{}) {
	defer close(done)
	s, err := sensor.Open(sensor.SharedOptions{StateDir: ss.StateDir, Mount: true})
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err != nil || ss.closed {
		ss.failed = true
		if err != nil {
			ss.Logf("sensor: not running (the seccomp supervisor still is): %v", err)
		} else {
			s.Close()
		}
		return
	}
	if s.Loaded && s.LSM != nil {
		ss.Logf("sensor: loaded; BPF-LSM not available, it sees and cannot deny: %v", s.LSM)
	}
	ss.s = s
	for _, p := range ss.pending {
		ss.watchLocked(p.c, p.dir)
	}
	ss.pending = nil
	ctx, cancel := context.WithCancel(context.Background())
	ss.stopLead = cancel
	go ss.lead(ctx, s)
}

// lead waits to be the node's reader, then reads until Close. Waiting
// holds no thread (sensor.Shared.Lead): most supervisors of a node wait
// for their whole life.
func (ss *Sensors) lead(ctx context.Context, s *sensor.Shared) {
	r, err := s.Lead(ctx)
	if err != nil {
		if ctx.Err() == nil {
			ss.Logf("sensor: cannot read its events: %v", err)
		}
		return
	}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		r.Close()
		return
	}
	ss.reader = r
	done := make(chan struct{})
	ss.readDone = done
	ss.mu.Unlock()
	defer close(done)
	stop, swept := make(chan struct{}), make(chan struct{})
	defer func() {
		close(stop)
		<-swept
	}()
	go func() {
		defer close(swept)
		for t := time.NewTicker(sweepEvery); ; {
			if _, err := s.Sweep(); err != nil {
				ss.Logf("sensor: %v", err)
			}
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	ss.run(s, r)
}

// Add watches a container (its PID and CgroupsPath must be set), waiting
// up to openWait for the sensor to open. A container whose policy has
// detection off is not watched.
func (ss *Sensors) Add(c Container) {
	if c.Detection == nil || !bool(c.Detection().Enabled) {
		return
	}
	ss.mu.Lock()
	if ss.closed || ss.failed || ss.byID == nil {
		ss.mu.Unlock()
		return
	}
	dir, err := ss.cgroupDir(c)
	if err != nil {
		ss.mu.Unlock()
		ss.Logf("sensor: not watching container %s: %v", c.ID, err)
		return
	}
	if ss.s != nil {
		ss.watchLocked(c, dir)
		ss.mu.Unlock()
		return
	}
	ss.pending[c.ID] = pendingWatch{c, dir}
	if ss.opened == nil {
		ss.opened = make(chan struct{})
		go ss.open(ss.opened)
	}
	opened := ss.opened
	ss.mu.Unlock()
	// open watches every pending container before it closes opened.
	t := time.NewTimer(openWait)
	defer t.Stop()
	select {
	case <-opened:
	case <-t.C:
		ss.Logf("sensor: still opening after %s; container %s runs and is watched once it is open", openWait, c.ID)
	}
}

func (ss *Sensors) watchLocked(c Container, dir string) {
	meta, err := json.Marshal(RecordOf(c))
	var id uint64
	if err == nil {
		id, err = ss.s.Watch(dir, meta)
	}
	if err != nil {
		ss.Logf("sensor: not watching container %s: %v", c.ID, err)
		return
	}
	ss.byID[c.ID] = id
}

// cgroupDir is the container's cgroup v2 directory (its ID is what the
// program sees); ss.mu is held.
func (ss *Sensors) cgroupDir(c Container) (string, error) {
	if ss.unified == nil {
		h, err := freezer.HostUnified()
		if err != nil {
			return "", err
		}
		ss.unified = &h
	}
	cg, err := freezer.Locate(*ss.unified, c.ID, c.PID, c.CgroupsPath)
	if err != nil {
		return "", err
	}
	return cg.Dir(), nil
}

// Remove stops watching a container.
func (ss *Sensors) Remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.pending, id)
	if cg, ok := ss.byID[id]; ok && ss.s != nil {
		if err := ss.s.Unwatch(cg); err != nil {
			ss.Logf("sensor: %v", err)
		}
		delete(ss.byID, id)
	}
}

// Close stops watching this supervisor's containers and hands the
// reader's role on; the shared program stays pinned for the others.
func (ss *Sensors) Close() error {
	ss.mu.Lock()
	ss.closed = true
	opened := ss.opened
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		if ss.stopLead != nil {
			ss.stopLead()
		}
		ss.mu.Unlock()
	}()
	// An open under way writes under the state directory: let it finish
	// (it sees closed and lets go), but never hold a shim's shutdown on
	// another process's lock for long.
	if opened != nil {
		select {
		case <-opened:
		case <-time.After(closeWait):
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.s == nil {
		return nil
	}
	var errs []error
	for id, cg := range ss.byID {
		errs = append(errs, ss.s.Unwatch(cg))
		delete(ss.byID, id)
	}
	if ss.reader != nil {
		errs = append(errs, ss.reader.Close())
		// The loop and the sweeps use s until they see the reader closed
		// (neither takes mu).
		select {
		case <-ss.readDone:
		case <-time.After(closeWait):
		}
	}
	errs = append(errs, ss.s.Close())
	return errors.Join(errs...)
}

// run reads the node's events and raises each under the container its
// record names.
func (ss *Sensors) run(s *sensor.Shared, r *sensor.Reader) {
	// last is when each cgroup last raised each rule (sensorQuiet), and
	// quieted how many events it held back since.
	last := map[sensorKey]time.Time{}
	quieted := map[sensorKey]int{}
	for {
		e, err := r.Read()
		if errors.Is(err, sensor.ErrClosed) {
			return
		}
		if err != nil {
			ss.Logf("sensor: %v", err)
			continue
		}
		// A build artefact keeps its own quiet period: a build job's
		// hundred test programs must not hide a dropped binary that
		// runs beside them.
		key, now := sensorKey{e.Cgroup, sensorRules[e.Target], e.BuildArtefact()}, time.Now()
		if now.Sub(last[key]) < sensorQuiet {
			quieted[key]++
			continue
		}
		if len(last) >= 4096 {
			clear(last)
			clear(quieted)
		}
		last[key] = now
		held := quieted[key]
		delete(quieted, key)
		meta, err := s.Meta(e.Cgroup)
		var rec Record
		if err == nil {
			err = json.Unmarshal(meta, &rec)
		}
		if err != nil {
			// Its supervisor removed it between the event and now.
			ss.Logf("sensor: %s in cgroup %d, whose container is gone: %v", e.Target, e.Cgroup, err)
			continue
		}
		ss.raise(rec.Unpack(), e, held)
	}
}

type sensorKey struct {
	cgroup   uint64
	rule     string
	artefact bool
}

// sensorRules maps what the sensor saw to the catalog's rule.
var sensorRules = map[sensor.Target]string{
	sensor.ReleaseAgent: "release-agent", sensor.NotifyOnRelease: "release-agent",
	sensor.CorePattern: "core-pattern", sensor.SysrqTrigger: "sysrq", sensor.ProcSys: "proc-sys",
	sensor.UeventHelper: "uevent-helper", sensor.HostDevice: "host-device", sensor.Drift: "drift",
}

// sensorEvent is the alert event for what the sensor saw in c.
func sensorEvent(c Container, e sensor.Event) (alert.Event, bool) {
	rule, ok := alert.Lookup(sensorRules[e.Target])
	if !ok {
		return alert.Event{}, false
	}
	ev := alert.Event{Time: time.Now(), Rule: rule, Container: c.Container, Decision: c.Decision,
		Syscall: "open", Path: e.Path, Process: procOf(int(e.Pid), e.Comm),
		Args: map[string]string{"evt.arg.flags": fmt.Sprintf("%#o", e.Flags), "ward.sensor.target": string(e.Target)}}
	switch {
	case e.Kind == sensor.KindExecWritten:
		ev.Syscall, ev.Args = "execve", map[string]string{"ward.sensor.target": string(e.Target),
			"ward.drift.file": e.File, "ward.drift.writer": e.Writer, "ward.drift.provenance": provenance(e)}
	case e.Failed:
		ev.Args["evt.res"] = e.Errno.Error()
	case e.Kind == sensor.KindDevice:
		ev.Args["fd.dev"] = fmt.Sprintf("%d:%d", sensor.Major(e.Rdev), sensor.Minor(e.Rdev))
	}
	if e.Opened != "" && e.Opened != e.Path {
		ev.Args["evt.arg.name"] = e.Opened
	}
	return ev, true
}

// provenance says in an alert who wrote an executed file: "toolchain"
// (only the image's own build tools: a build artefact), "image" (a
// program of the image that is not one, cp or a shell say), "container"
// (a program that is itself no file of the image, or whose layer the
// sensor cannot tell).
func provenance(e sensor.Event) string {
	switch {
	case e.BuildArtefact():
		return "toolchain"
	case e.WriterFlags&sensor.WriterImage != 0:
		return "image"
	}
	return "container"
}

// raise alerts and responds; held is how many events of the same kind
// the container's quiet period held back before this one. A build
// artefact executed is a notice, not an alert, unless the workload asked
// for strict drift: counted (ward.count), never answered.
func (ss *Sensors) raise(c Container, e sensor.Event, held int) {
	ev, ok := sensorEvent(c, e)
	if !ok {
		return
	}
	if e.BuildArtefact() && !c.StrictDrift {
		ev.Response = "allow"
		ev.Rule.Summary = "A file the image's own toolchain (" + e.Writer + ") built in the container was executed (build artefact: counted, not alerted)"
		ev.Args["ward.count"] = strconv.Itoa(held + 1)
		if err := ss.Alerts.Notice(ev); err != nil {
			ss.Logf("sensor: notice of a build artefact in %s: %v", c.ID, err)
		}
		return
	}
	resp := policy.RespondAlert
	if c.Detection != nil {
		det := c.Detection()
		resp = det.Response(ev.Rule.ID)
	}
	switch {
	case resp == policy.RespondFreeze || resp == policy.RespondKill:
		ev.Response = string(resp)
	case e.Failed:
		ev.Response = "deny"
	default:
		ev.Response = "allow"
	}
	if _, err := ss.Alerts.Emit(ev); err != nil {
		ss.Logf("sensor: alert for %s in %s: %v", ev.Rule.ID, c.ID, err)
	}
	if (resp == policy.RespondFreeze || resp == policy.RespondKill) && ss.Respond != nil {
		ss.Respond(c, ev, resp)
	}
}

// procOf reads what an alert says of a process; it may be gone already.
func procOf(pid int, comm string) alert.Process {
	dir := "/proc/" + strconv.Itoa(pid)
	p := alert.Process{PID: pid, Name: comm}
	p.ExePath, _ = os.Readlink(dir + "/exe")
	p.Cmdline = strings.TrimSpace(strings.ReplaceAll(readSmall(dir+"/cmdline", maxCmdline), "\x00", " "))
	p.Cwd, _ = os.Readlink(dir + "/cwd")
	if p.PPID = statusField(readSmall(dir+"/status", 4096), "PPid:"); p.PPID > 0 {
		p.PName = strings.TrimSuffix(readSmall("/proc/"+strconv.Itoa(p.PPID)+"/comm", 64), "\n")
	}
	return p
}
