package wardruntime

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/supervisor"
	"github.com/ward-runtime/ward/policy"
)

// A container's after-start jobs (docs/ward-runtime.md): ward-runtime is
// gone once it has exec'd runc, and Docker and Podman run no ward daemon,
// so someone else must supervise the container's seccomp listener (when
// detection is on) and, after a foreground run, reap it (reap.go). Both
// are the node's supervisor's (node.go), one process for every container
// ward-runtime starts on the node, handed each container after admission,
// and only when there is a job for it. It replaced a helper process per
// container: each Go process start costs several milliseconds of CPU on a
// small VM, as much as ward-runtime's own call (docs/benchmarks.md).

// helperInfo is what the node's supervisor learns of a container.
type helperInfo struct {
	// Container, when set, is the container whose listeners the
	// supervisor answers, on the socket it was handed.
	Container *supervisor.Container `json:"container,omitempty"`
	Detection policy.Detection      `json:"detection"`
	// Reap asks the supervisor to forget the container once the process
	// of the pidfd it was handed has ended (a foreground run); Created
	// tells the record apart from a later container that reused the ID.
	Reap    bool  `json:"reap,omitempty"`
	Created int64 `json:"created"`
	// WatchLayer asks the supervisor to watch the container's writable
	// layer (watchLayer): a Podman container with an idmapped one. The
	// caller has the record at hand; the supervisor loads it only then.
	WatchLayer bool `json:"watchLayer,omitempty"`
}

// bound is a supervisor socket ward-runtime made for a container before
// admission: bound and listening, so the admission can name it, and
// handed to the node's supervisor afterwards (connections queue in the
// kernel until it accepts them).
type bound struct {
	path string
	f    *os.File
}

// bindSupervisor makes the container's supervisor socket; nil (detection
// off for this container, a warning said why) when it cannot.
func (c *ctx) bindSupervisor(id string) *bound {
	// Without ward-init nothing installs a filter that notifies, and
	// without Spawn (tests) nothing would serve the socket.
	if c.env.Spawn == nil || judge.Launcher() == "" {
		return nil
	}
	var b [8]byte
	rand.Read(b[:])
	path := filepath.Join(supervisor.DefaultDir, "rt-"+hex.EncodeToString(b[:])+".sock")
	f, err := supervisor.Bind(path)
	if err != nil {
		c.log.warn(fmt.Sprintf("ward-runtime: no seccomp supervisor for %s (escape calls are refused without alerts): %v", id, err))
		return nil
	}
	return &bound{path: path, f: f}
}

// socket is the socket's path, "" without one.
func (b *bound) socket() string {
	if b == nil {
		return ""
	}
	return b.path
}

// release gives the socket up: nothing will serve it.
func (b *bound) release() {
	if b != nil {
		b.f.Close()
		os.Remove(b.path)
	}
}

// startHelper hands the container to the node's supervisor (node.go) when
// there is a job for it: the supervisor's, when the admitted spec hands its
// listener to the socket, the reaper's, when reap is set, and the layer
// watch's, for a Podman container with an idmapped writable layer
// (watchLayer). An error means the container must not start: its spec
// already names a socket no one would serve.
func (c *ctx) startHelper(rec *Record, ad *admission.Admission, adm *admission.Admitter, b *bound, reap bool) error {
	in := helperInfo{Reap: reap && c.env.Spawn != nil, Created: rec.Created.UnixNano()}
	job := nodeJob{Args: c.globalArgs, Env: wardEnviron(c.env.Environ), ID: rec.ID, Sock: "-"}
	if b != nil && supervisor.Uses(ad.Bundle.Spec) {
		rec := supervisor.RecordOf(supervisor.ContainerOf(ad, adm, 0))
		in.Container, in.Detection, job.Sock = &rec.Container, rec.Detection, b.path
	} else {
		b.release()
		b = nil
	}
	in.WatchLayer = c.env.Spawn != nil && podmanLayer(rec) != nil
	if in.Container == nil && !in.Reap && !in.WatchLayer {
		return nil
	}
	var files []*os.File
	if b != nil {
		files = append(files, b.f)
	}
	var err error
	if in.Reap {
		// A pidfd of this process, which stays this process across
		// execve: after ward execs the backend, it is the backend's.
		var pidfd *os.File
		if pidfd, err = pidfdSelf(); err == nil {
			defer pidfd.Close()
			files = append(files, pidfd)
			job.Pidfd = true
		}
	}
	job.Info = in
	if err == nil {
		t0 := time.Now()
		err = c.handToNode(job, files)
		c.log.debugf("ward-runtime: %s: handed to the node's supervisor in %s", rec.ID, time.Since(t0))
	}
	if err != nil {
		b.release()
		if in.Container == nil {
			// Only the reaper's job (`list` still prunes, as before) or
			// the layer watch's (exec and delete still adopt).
			c.log.warn(fmt.Sprintf("ward-runtime: no reaper or layer watch for container %s (its record and user namespace stay until `list` prunes them; podman cp's copies are the container root's at its next exec or delete): %v", rec.ID, err))
			return nil
		}
		return fmt.Errorf("starting the seccomp supervisor of container %s: %w", rec.ID, err)
	}
	if b != nil {
		b.f.Close() // the node's supervisor has its own descriptor now
	}
	return nil
}

// serveContainer is the node supervisor's work for one container handed
// over (node.go): it supervises the container's listeners on sockFile
// (when sock is not "-") until the container's record is gone or its first
// process has ended, and, with a pidfd, reaps it after a foreground run
// (or, if the backend still has the container then, supervises until the
// record is gone).
func (c *ctx) serveContainer(id, sock string, sockFile, pidfd *os.File, in *helperInfo, set *sinkSet) error {
	var sup *supervised
	if sockFile != nil {
		if in.Container == nil {
			sockFile.Close()
			os.Remove(sock)
		} else {
			sup = c.supervise(id, sock, sockFile, in, set)
			defer sup.close()
		}
	}
	if pidfd != nil {
		if done, err := c.reapAfter(id, in.Created, pidfd); done || err != nil {
			return err
		}
	}
	// A stat, not a load: this runs every 2 s for the container's life.
	rec := c.records().path(id)
	for {
		time.Sleep(2 * time.Second)
		if _, err := os.Lstat(rec); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if pid := sup.pid(); pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
			return nil
		}
	}
}

// supervised is a running supervisor of one container.
type supervised struct {
	sup   *supervisor.Supervisor
	sinks *sinks

	// initPID reads the container's first process from runc's state.
	initPID func() (int, error)

	mu  sync.Mutex
	ctr supervisor.Container
	reg *supervisor.Registry // nil until the first listener connects
}

// supervise serves the container's listeners on the socket ward-runtime
// bound, raising alerts through the sinks of its configuration (sinkSet).
// It never fails the container: the spec already sends its listener here,
// and ward-init refuses to start without an acknowledgement, so what
// cannot work is logged and the container's ward-init fails closed.
func (c *ctx) supervise(id, sock string, f *os.File, in *helperInfo, set *sinkSet) *supervised {
	logf := func(format string, args ...any) { c.log.warn(fmt.Sprintf(format, args...)) }
	sk := set.get(c.cfg)
	s := &supervised{sinks: sk, ctr: supervisor.Record{Container: *in.Container, Detection: in.Detection}.Unpack(),
		initPID: c.initPIDOf(id)}
	var err error
	s.sup, err = supervisor.Listen(supervisor.Options{Socket: sock, Bound: f, Resolve: s.resolve, Alerts: sk.alerts, Logf: logf, Respond: sk.respond})
	if err != nil {
		// ward-init finds no one to acknowledge its listener and refuses
		// to start the workload: fail closed, with this in the log.
		logf("ward-runtime: %s %s: %v", nodeCommand, id, err)
	}
	return s
}

// resolve attributes a listener as the shim does: the container's first
// process, or a process in its mount namespace (an exec session); never
// whoever connects first, since the socket is reachable from the host. The
// first process comes from runc's state, which exists once create has
// returned, before any process of the container can connect (ward-init
// runs only after start).
func (s *supervised) resolve(pid int) (supervisor.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reg == nil {
		init, err := s.initPID()
		if err == nil && init == 0 {
			err = errors.New("no state")
		}
		if err != nil {
			return supervisor.Container{}, fmt.Errorf("finding the first process of container %s: %w", s.ctr.ID, err)
		}
		s.ctr.PID = init
		s.reg = supervisor.NewRegistry()
		s.reg.Add(s.ctr, init)
		s.sinks.sensors.Add(s.ctr)
	}
	return s.reg.Resolve(pid)
}

// pid is the container's first process, 0 before it connected (or
// without a supervisor).
func (s *supervised) pid() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctr.PID
}

func (s *supervised) close() {
	if s.sup != nil {
		s.sup.Close()
	}
	s.sinks.sensors.Remove(s.ctr.ID)
}

// sinkSet holds, in the node's supervisor, the alert sinks and the eBPF
// sensor's share of each configuration its containers were admitted
// under: one dispatcher (its files, its per-container budgets) and one
// Sensors (one descriptor on the pinned sensor, one goroutine waiting to
// be its reader) for all of them, as a pod's shim has for its containers,
// instead of one each per container. They stay open until the supervisor
// exits (close), which is at most nodeLinger after its last container:
// short-lived containers one after the other would otherwise open and
// close the sensor each time.
type sinkSet struct {
	logf func(format string, args ...any)

	mu sync.Mutex
	by map[string]*sinks
}

// sinks are one configuration's.
type sinks struct {
	alerts  *alert.Dispatcher
	sensors *supervisor.Sensors
	respond func(supervisor.Container, alert.Event, policy.Response)
}

// get returns cfg's sinks, opening them for its first container.
func (set *sinkSet) get(cfg nodeconfig.Config) *sinks {
	key, _ := json.Marshal(struct {
		State, Log string
		Alerts     any
	}{cfg.StateDir, cfg.LogPath(), cfg.Alerts})
	set.mu.Lock()
	defer set.mu.Unlock()
	sk := set.by[string(key)]
	if sk == nil {
		alerts, err := cfg.Alerts.Open(cfg.StateDir, nil)
		if err != nil {
			set.logf("ward-runtime: %s: alerts of the containers under %s go nowhere: %v", nodeCommand, cfg.StateDir, err)
			alerts = alert.NewDispatcher(nil, alert.Limits{})
		}
		sk = &sinks{alerts: alerts, respond: supervisor.Responder{StateDir: cfg.StateDir, DecisionLog: cfg.LogPath(), Logf: set.logf}.Respond}
		// The eBPF sensor, for what seccomp cannot see (docs/sensors.md);
		// Add skips containers whose detection is off.
		sk.sensors = &supervisor.Sensors{Alerts: alerts, Respond: sk.respond, Logf: set.logf, StateDir: cfg.StateDir}
		if cfg.Alerts.SensorOn() {
			sk.sensors.Start()
		}
		set.by[string(key)] = sk
	}
	return sk
}

// close closes every configuration's sinks (the sensor's reader role
// passes to another supervisor).
func (set *sinkSet) close() {
	set.mu.Lock()
	defer set.mu.Unlock()
	for key, sk := range set.by {
		sk.sensors.Close()
		sk.alerts.Close()
		delete(set.by, key)
	}
}
