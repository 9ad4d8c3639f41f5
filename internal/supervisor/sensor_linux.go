package supervisor

import (
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

// Sensors runs ward's eBPF sensor (internal/sensor) for a supervisor's
// containers: what seccomp cannot see (writes to release_agent,
// core_pattern, /proc/sys, sysrq-trigger; host-device opens; drift) raises
// an alert under the rule of the same catalog, and a freeze or kill
// response acts as it does for a system call. The call itself has
// happened (no BPF-LSM to deny it), so an attempt the kernel let through
// is reported "allow", one it refused "deny".
//
// The sensor loads in the background (Start): a container added before
// it is ready is watched once it is. Where it cannot load, one warning
// says why and the seccomp supervisor works on alone.
type Sensors struct {
	Alerts  *alert.Dispatcher
	Respond func(c Container, e alert.Event, r policy.Response)
	Logf    func(format string, args ...any)

	mu      sync.Mutex
	s       *sensor.Sensor
	failed  bool
	closed  bool
	pending map[string]Container
	byCg    map[uint64]Container
	byID    map[string]uint64
	// last is when each container last raised each rule (sensorQuiet).
	last map[[2]string]time.Time
}

// sensorQuiet is how long a rule stays quiet for a container after it
// alerted: one attempt touches many files (every hierarchy's
// notify_on_release, every sysctl of a script), and the container's alert
// budget (alert.Limits) is better spent on the next rule than on the same
// one again.
const sensorQuiet = 10 * time.Second

// Start loads the sensor in the background.
func (ss *Sensors) Start() {
	ss.mu.Lock()
	ss.pending, ss.byCg, ss.byID = map[string]Container{}, map[uint64]Container{}, map[string]uint64{}
	ss.last = map[[2]string]time.Time{}
	ss.mu.Unlock()
	go ss.load()
}

func (ss *Sensors) load() {
	s, err := sensor.Load(sensor.Options{MountTracefs: true})
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
	if s.LSM != nil {
		ss.Logf("sensor: loaded; BPF-LSM not available, it sees and cannot deny: %v", s.LSM)
	}
	ss.s = s
	for _, c := range ss.pending {
		ss.watchLocked(c)
	}
	ss.pending = nil
	go ss.run(s)
}

// Add watches a container (its PID and CgroupsPath must be set). A
// container whose policy has detection off is not watched.
func (ss *Sensors) Add(c Container) {
	if c.Detection == nil || !bool(c.Detection().Enabled) {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.closed || ss.failed || ss.byCg == nil:
	case ss.s == nil:
		ss.pending[c.ID] = c
	default:
		ss.watchLocked(c)
	}
}

func (ss *Sensors) watchLocked(c Container) {
	id, err := cgroupID(c)
	if err == nil {
		err = ss.s.Watch(id)
	}
	if err != nil {
		ss.Logf("sensor: not watching container %s: %v", c.ID, err)
		return
	}
	ss.byCg[id], ss.byID[c.ID] = c, id
}

// cgroupID is the container's cgroup v2 ID (what the program sees).
func cgroupID(c Container) (uint64, error) {
	h, err := freezer.HostUnified()
	if err != nil {
		return 0, err
	}
	cg, err := freezer.Locate(h, c.ID, c.PID, c.CgroupsPath)
	if err != nil {
		return 0, err
	}
	return sensor.CgroupID(cg.Dir())
}

// Remove stops watching a container.
func (ss *Sensors) Remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.pending, id)
	for k := range ss.last {
		if k[0] == id {
			delete(ss.last, k)
		}
	}
	if cg, ok := ss.byID[id]; ok && ss.s != nil {
		ss.s.Unwatch(cg)
		delete(ss.byID, id)
		delete(ss.byCg, cg)
	}
}

// Close unloads the sensor.
func (ss *Sensors) Close() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	if ss.s == nil {
		return nil
	}
	return ss.s.Close()
}

func (ss *Sensors) run(s *sensor.Sensor) {
	for {
		e, err := s.Read()
		if errors.Is(err, sensor.ErrClosed) {
			return
		}
		if err != nil {
			ss.Logf("sensor: %v", err)
			continue
		}
		ss.mu.Lock()
		c, ok := ss.byCg[e.Cgroup]
		if ok {
			key, now := [2]string{c.ID, sensorRules[e.Target]}, time.Now()
			if now.Sub(ss.last[key]) < sensorQuiet {
				ok = false
			} else {
				if len(ss.last) >= 4096 {
					clear(ss.last)
				}
				ss.last[key] = now
			}
		}
		ss.mu.Unlock()
		if ok {
			ss.raise(c, e)
		}
	}
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
		ev.Syscall, ev.Args = "execve", map[string]string{"ward.sensor.target": string(e.Target)}
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

// raise alerts and responds.
func (ss *Sensors) raise(c Container, e sensor.Event) {
	ev, ok := sensorEvent(c, e)
	if !ok {
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
