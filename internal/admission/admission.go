// Package admission is the one decision path every front door calls. It is
// built once from the node configuration (policy, user-namespace ID pool,
// judge with its launcher, decision log, backends table, pod records) and
// answers two questions:
//
//	Admit(Request)     may this container be created, and how?
//	AdmitExec(...)     may this process be started in a container ward decided?
//
// An Admission carries the verdict, the resolved backend, the user-namespace
// lease with its release, and the decision-log entry, which Admit has
// already written. A refusal is a typed error: *Rejection (the policy said
// no, with the deciding findings as data) or *Error (ward could not judge or
// prepare the container, and fails closed). Front doors keep only their
// transport: the shim its task API and runc options, ward-runtime its argv,
// state records and exec, `ward explain` its printing.
//
//	front door --Request--> Admit: bundle.Load -> pod record -> lease
//	  -> judge.Spec (evaluate, harden, verify) -> moved sysctls -> rootfs idmap
//	  -> backend -> write spec -> pod record -> decision log --> Admission
package admission

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/nodeonly"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Door names a front door in decision-log entries.
type Door string

const (
	DoorShim    Door = "shim"
	DoorRuntime Door = "runtime"
	DoorCLI     Door = "cli"
)

// Options are what differ between the front doors that build an Admitter.
type Options struct {
	Door Door
	// Launcher is ward-init's path on the host ("" when it is not
	// installed: hardened verdicts then say Landlock is not enforced).
	Launcher string
	// Publish, when set, gets every decision-log entry once it is written
	// (the shim sends it to containerd as an event).
	Publish func(decisionlog.Entry)
	// NoLog leaves the decision log closed whatever the configuration
	// says: `ward explain` judges, it does not decide for the node.
	NoLog bool
	// NoPool leaves the user-namespace pool unread: `ward explain` shows
	// a placeholder block instead of allocating one.
	NoPool bool
	// Policy, when set, is the policy in force instead of the one the
	// configuration names (`ward explain --policy`, or one read from
	// stdin).
	Policy *policy.Policy
	// LoadPolicy, when set and Policy is not, reads the policy the
	// configuration names instead of policy.Load (ward-runtime's cache,
	// internal/policycache): a failure is still a load failure, logged
	// as one.
	LoadPolicy func(path string) (*policy.Policy, error)
	// Pool, with NoPool, is the pool a mapping the container manager made
	// is verified against (the node's, when `ward explain` finds one).
	Pool []userns.Range
	// NodeNamespaces are the node's namespaces as the front door found
	// its own when it started (nodefacts.OwnNamespaces), before any of its
	// threads entered a container's: host namespaces are known by these
	// when PID 1's cannot be read.
	NodeNamespaces map[specs.LinuxNamespaceType]policy.ObjectID
	// FilterDir is where compiled seccomp filters are kept
	// (seccompbpf.DefaultDir in the front doors): with a launcher,
	// ward-init installs ward's baseline, stacked on a container's own
	// profile. "" puts ward's profile into linux.seccomp for runc.
	FilterDir string
	// Supervisor is the door's supervisor socket on the host (package
	// supervisor): with a policy whose detection is enabled, hardened
	// containers' escape system calls are answered there. "" turns
	// detection off for this door.
	Supervisor string
	// Preview: the verdicts are only printed, never run (`ward explain`;
	// judge.Options.Preview). Off Linux, only a CLI admitter with it
	// builds: every other door runs containers, which needs a Linux node.
	Preview bool
}

// Admitter decides containers for one node configuration. It is safe for
// concurrent use; its only mutable state is on disk (pod records, the
// allocator, the log), each with its own locking.
type Admitter struct {
	cfg      nodeconfig.Config
	opts     Options
	policy   *policy.Policy
	judge    *judge.Judge
	pool     []userns.Range
	backends backend.Table
	log      *decisionlog.Log
	pods     PodStore
	loaded   time.Time
}

// New builds an Admitter: it loads the policy, checks that every backend
// the policy names is in the node's table, loads the ID pool when the
// policy turns user namespaces on, builds the judge and opens the decision
// log. Any error means no container can be decided.
func New(cfg nodeconfig.Config, o Options) (*Admitter, error) {
	a, err := build(cfg, o)
	if err != nil && !o.NoLog {
		err = errors.Join(err, recordLoadFailure(cfg, o.Door, err))
	}
	return a, err
}

// recordLoadFailure writes an entry of event "load" to the decision log the
// configuration names: the node cannot decide anything until its
// configuration or policy loads, and that must show where its decisions
// are read (ward metrics counts it). A log that cannot be written is
// reported with the load error; nothing runs either way.
func recordLoadFailure(cfg nodeconfig.Config, door Door, loadErr error) error {
	path := cfg.LogPath()
	if path == "" {
		return nil
	}
	l, err := openLog(path)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Write(decisionlog.Entry{Door: string(door), Event: "load", Error: loadErr.Error(), ErrorKind: "policy"})
}

func build(cfg nodeconfig.Config, o Options) (*Admitter, error) {
	if runtime.GOOS != "linux" && (o.Door != DoorCLI || !o.Preview) {
		what := "deciding containers for the " + string(o.Door) + " front door"
		if o.Door == DoorCLI {
			what = "writing a spec to run (ward's seccomp profile is generated on the node)"
		}
		return nil, nodeonly.New(what)
	}
	p := o.Policy
	if p == nil {
		load := o.LoadPolicy
		if load == nil {
			load = policy.Load
		}
		var err error
		if p, err = load(cfg.Policy); err != nil {
			return nil, fmt.Errorf("loading policy: %w", err)
		}
	}
	table, err := cfg.Table()
	if err != nil {
		return nil, err
	}
	if err := table.CheckPolicy(p); err != nil {
		return nil, err
	}
	pool := o.Pool
	if bool(p.Userns.Enabled) && !o.NoPool {
		if pool, err = cfg.Userns.Pool(p.Userns.Pool); err != nil {
			return nil, fmt.Errorf("policy enables user namespaces: %w", err)
		}
	}
	j, err := judge.New(p, judge.Options{Launcher: o.Launcher, UsernsPool: pool, Backends: table, FilterDir: o.FilterDir, Supervisor: o.Supervisor, Preview: o.Preview,
		NoSensor: !cfg.Alerts.SensorOn()})
	if err != nil {
		return nil, err
	}
	a := &Admitter{cfg: cfg, opts: o, policy: p, judge: j, pool: pool, backends: table,
		pods: PodStore{Dir: cfg.PodDir()}, loaded: time.Now()}
	if path := cfg.LogPath(); path != "" && !o.NoLog {
		if a.log, err = openLog(path); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// openLog opens the decision log at path, making its directory first.
func openLog(path string) (*decisionlog.Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("creating decision log directory: %w", err)
	}
	return decisionlog.Open(path)
}

// Close closes the decision log.
func (a *Admitter) Close() error {
	if a.log == nil {
		return nil
	}
	return a.log.Close()
}

// Config is the node configuration the Admitter was built from.
func (a *Admitter) Config() nodeconfig.Config { return a.cfg }

// Policy is the policy in force.
func (a *Admitter) Policy() *policy.Policy { return a.policy }

// Judge is the policy's judge.
func (a *Admitter) Judge() *judge.Judge { return a.judge }

// Backends is the node's backends table.
func (a *Admitter) Backends() backend.Table { return a.backends }

// Pods is the node's pod records.
func (a *Admitter) Pods() PodStore { return a.pods }

// record writes e to the decision log and hands it to Publish. A decision
// ward cannot record is not made: the caller fails closed on the error, so
// that an operator who relies on the log (audit mode has nothing else)
// sees every container that ran.
func (a *Admitter) record(e *decisionlog.Entry) error {
	e.Door = string(a.opts.Door)
	if e.ID == "" {
		e.ID = decisionlog.NewID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	var err error
	if a.log != nil {
		err = a.log.Write(*e)
	}
	if a.opts.Publish != nil {
		a.opts.Publish(*e)
	}
	if err != nil {
		return fmt.Errorf("recording the decision: %w", err)
	}
	return nil
}

// Rejection is the policy's refusal of a container: what the user sees in
// crictl, kubelet events and Docker's error, from every front door alike.
type Rejection struct {
	ContainerID string
	// Rule is the deciding rule, "" when the pod's decision decided.
	Rule   string
	Reason string
	// Findings are the deciding findings' IDs.
	Findings []string
}

func (r *Rejection) Error() string {
	rule := r.Rule
	if rule == "" {
		rule = "pod decision"
	}
	return fmt.Sprintf("ward rejected container %s: findings [%s]; %s: %s (ward explain shows where; docs/policy.md says how to exempt)",
		r.ContainerID, strings.Join(r.Findings, ", "), rule, r.Reason)
}

// ErrorKind classifies why ward refused to run a container it could not
// decide; front doors map it to their transport's error codes.
type ErrorKind int

const (
	// Failed: ward could not judge, prepare or record the container.
	Failed ErrorKind = iota
	// InvalidSpec: the bundle or process is malformed.
	InvalidSpec
	// UnknownPod: an app container's pod sandbox has no ward decision.
	UnknownPod
	// Forbidden: an exec session asks for an escape shape.
	Forbidden
)

// String is the kind as decision-log entries name it (errorKind).
func (k ErrorKind) String() string {
	switch k {
	case InvalidSpec:
		return "invalid-spec"
	case UnknownPod:
		return "unknown-pod"
	case Forbidden:
		return "forbidden"
	}
	return "failed"
}

// Error is a fail-closed refusal: the container (or exec) must not run.
type Error struct {
	Kind        ErrorKind
	ContainerID string
	// Exec is set for an exec session's refusal.
	Exec bool
	Err  error
}

func (e *Error) Error() string {
	what := "container " + e.ContainerID
	if e.Exec {
		what = "exec in " + e.ContainerID
	}
	if e.Kind != Failed {
		return fmt.Sprintf("ward refused %s: %v", what, e.Err)
	}
	return fmt.Sprintf("ward refused %s (fail closed): %v", what, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Unjudged is the refusal of a container (or an exec in it) when no
// Admitter could be built from the node configuration: every front door
// says it the same way.
func Unjudged(id string, exec bool, err error) error {
	return &Error{ContainerID: id, Exec: exec, Err: fmt.Errorf("ward cannot judge it: %w", err)}
}

// IsRejection reports whether err is a policy rejection.
func IsRejection(err error) bool {
	var r *Rejection
	return errors.As(err, &r)
}
