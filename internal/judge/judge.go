// Package judge is ward's pipeline, the one every front door calls: a loaded
// spec in, a decision and (for harden) the rewritten spec out.
//
//	bundle.Load -> policy.Evaluate -> harden.Apply -> verify
//
// It does no I/O. Front doors read bundles, write the rewritten config.json,
// log the decision and start the chosen runtime.
package judge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/nodeonly"
	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Judge holds one policy's evaluator and rewrite pipeline. It is immutable
// and safe for concurrent use.
type Judge struct {
	eval     *policy.Evaluator
	hardener *harden.Hardener
	// landlock is true when the pipeline applies Landlock, so that
	// verdicts can say where it does not; noLauncher when the policy asks
	// for Landlock but no launcher was given.
	landlock   bool
	noLauncher bool
	// userns is true when the pipeline gives containers a user namespace.
	userns bool
	// watchDrift: hardened containers are watched for drift (the policy's
	// detection is on and the node runs the eBPF sensor).
	watchDrift bool
	// backends says which protections each backend enforces, for notes.
	backends backend.Table
}

// Options add optional rewrite steps to the pipeline.
type Options struct {
	// UsernsPool is the host ID pool the front door allocates user
	// namespace blocks from. With a policy whose userns section is
	// enabled, hardened containers get a user namespace: the block for
	// each container comes with its call (policy.Input.Userns), because
	// the Judge is shared; the pool is what a mapping the container
	// manager made must not overlap.
	UsernsPool []userns.Range
	// Launcher is ward-init's path on the host. With it, hardened
	// containers run under the policy's Landlock profile; without it (""),
	// or with a policy whose landlock profile is "none", they do not, and
	// every hardened verdict says so in a note.
	Launcher string
	// Backends is the node's backends table (nil: ward's built-in one);
	// verdicts for a backend name the protections it does not enforce.
	Backends backend.Table
	// FilterDir, with a Launcher, is where compiled seccomp filters are
	// kept (seccompbpf.DefaultDir in the front doors): ward-init then
	// installs ward's seccomp baseline instead of runc, and a container's
	// own profile is kept for runc with the baseline stacked on it.
	// Without it, ward's profile goes into linux.seccomp.
	FilterDir string
	// Supervisor, with a FilterDir and a policy whose detection is
	// enabled, is the host path of the front door's supervisor socket:
	// ward-init's baseline then sends its refusals of the detection
	// rules' system calls there (docs/detection.md). "" leaves them
	// refused silently.
	Supervisor string
	// Preview says the verdicts are only reported, never run (`ward
	// scan`, `ward explain`): where ward's seccomp profile cannot be
	// generated (off Linux), profiles.SeccompPreview stands in, so that
	// the verdict is the node's and the recorded change says it is a
	// stand-in. Without it, the judge fails to build there.
	Preview bool
	// Seccomp, when set, is the profile source instead of ward's
	// generator (tests: the preview's stand-in on Linux).
	Seccomp harden.SeccompSource
	// NoSensor: the node runs no eBPF sensor (alerts.sensor: false), so
	// drift is not watched (Verdict.Drift).
	NoSensor bool
}

// Launcher finds ward-init beside the running binary, where `make build`
// and `ward install` put every ward binary; "" when it is not there.
func Launcher() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "ward-init")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// NoteNoLauncher is the note on hardened verdicts when no launcher is
// installed.
const NoteNoLauncher = "Landlock not enforced: ward-init is not installed beside ward"

// New builds a Judge for p.
func New(p *policy.Policy, o Options) (*Judge, error) {
	var ll *harden.Step
	var err error
	if o.Launcher != "" && p.Landlock.Profile != policy.ProfileNone {
		ll, err = harden.NewLandlockStep(harden.LandlockOptions{Launcher: o.Launcher, Settings: &p.Landlock, ABI: landlock.DetectABI()})
		if err != nil {
			return nil, fmt.Errorf("building judge: %w", err)
		}
	}
	eval := policy.NewEvaluator(p)
	var us *harden.Step
	if p.Userns.Enabled {
		us, err = harden.NewUsernsStep(harden.UsernsOptions{Pool: o.UsernsPool, Own: eval.Own})
		if err != nil {
			return nil, fmt.Errorf("building judge: %w", err)
		}
	}
	var gen harden.SeccompSource
	var filters harden.FilterSource
	var supervisor string
	if ll != nil && o.FilterDir != "" {
		// The generator is built only when a filter is not cached yet,
		// or for a container without ward-init.
		lazy := profiles.NewLazySeccompGenerator(p.Harden.Capabilities)
		inputs, err := profiles.SeccompInputsDigest()
		if err != nil {
			inputs = "" // no cross-process index; every process compiles
		}
		// A directory ward cannot create or write (an unprivileged
		// caller) leaves the profile to runc: as safe, only slower.
		var notify []string
		if o.Supervisor != "" && bool(p.Detection.Enabled) {
			notify = alert.NotifySyscalls()
		}
		if store, err := seccompbpf.NewStore(o.FilterDir, lazy, inputs, notify); err == nil {
			gen, filters = lazy, store
			if notify != nil {
				supervisor = o.Supervisor
			}
		}
	}
	if gen == nil {
		gen = o.Seccomp
	}
	if gen == nil {
		g, err := profiles.NewSeccompGenerator(p.Harden.Capabilities)
		switch {
		case err == nil:
			gen = g
		case o.Preview && errors.Is(err, nodeonly.ErrNotSupported):
			gen = profiles.SeccompPreview{}
		default:
			return nil, fmt.Errorf("building judge: %w", err)
		}
	}
	h, err := harden.New(harden.Options{
		Capabilities: p.Harden.Capabilities,
		Seccomp:      gen,
		Filters:      filters,
		Supervisor:   supervisor,
		Userns:       us,
		Landlock:     ll,
	})
	if err != nil {
		return nil, fmt.Errorf("building judge: %w", err)
	}
	if o.Backends == nil {
		o.Backends = backend.Builtin()
	}
	j := &Judge{eval: eval, hardener: h, landlock: ll != nil, userns: us != nil, backends: o.Backends,
		watchDrift: bool(p.Detection.Enabled) && !o.NoSensor}
	j.noLauncher = ll == nil && p.Landlock.Profile != policy.ProfileNone
	return j, nil
}

// Evaluator returns the judge's evaluator.
func (j *Judge) Evaluator() *policy.Evaluator { return j.eval }

// Steps names the rewrite steps in order.
func (j *Judge) Steps() []string { return j.hardener.Steps() }

// Verdict is the outcome for one container.
type Verdict struct {
	policy.Decision
	// Changes lists what hardening changed; empty unless the action is
	// harden and the policy enforces.
	Changes []harden.Change
	// Notes say what ward could not do for this container, e.g. a
	// protection the chosen backend does not support. ward never lets a
	// report imply a protection that is not in force.
	Notes []string
	// Launched is true when the hardened container's process runs under
	// ward-init (harden.Launched): its exec sessions must too.
	Launched bool
	// Drift is what ward does about drift in the container at run time.
	Drift Drift
}

// NoteLandlockSandbox is the note for containers sent to a sandbox whose
// kernel does not implement Landlock (gVisor's): the sandbox is their
// boundary instead.
const NoteLandlockSandbox = "Landlock not enforced (%s): its kernel does not implement Landlock; the sandbox's own kernel is the boundary"

// NoteUsernsSandbox is the note for containers sent to a sandbox runtime:
// ward adds no user namespace there.
const NoteUsernsSandbox = "no ward user namespace (%s): the sandbox's own kernel is the boundary, and ward does not remap its IDs"

// NoteUsernsKept is the note for a container whose manager made the user
// namespace (a pod with hostUsers: false): ward verified its mapping.
const NoteUsernsKept = "user namespace: the container manager's mapping (hostUsers: false) is kept, verified to leave host root unmapped and stay off ward's pool"

// NoteOwnSandbox is the note for a container that runs in a sandbox of
// its own (backend) in a network namespace other processes already live in
// (whose: its pod's, another container's): it shares that namespace
// through the node kernel's network stack, not the sandbox's
// (backend.Runtime.InJoinedNetns).
const NoteOwnSandbox = "own %s sandbox in a network namespace already in use (%s): it uses the namespace as it is (runsc --network=host) so that the namespace keeps its IP; its sockets are the node kernel's, reached through the sandbox's kernel, not the sandbox's own network stack"

// Rewritten reports whether the spec was changed.
func (v *Verdict) Rewritten() bool { return len(v.Changes) > 0 }

// Spec judges a container and, when it is to be hardened, rewrites spec in
// place. The caller runs spec only if the verdict's action is not reject and
// err is nil. In audit mode spec is never changed.
func (j *Judge) Spec(in policy.Input) (Verdict, error) {
	v := Verdict{Decision: j.eval.Evaluate(in)}
	be := j.backends[v.Backend]
	if j.landlock && v.Action == policy.Sandbox && be.Kind == backend.OCIRuntime && !be.Enforces.Landlock {
		v.Notes = append(v.Notes, fmt.Sprintf(NoteLandlockSandbox, v.Backend))
	}
	if j.userns && v.Action == policy.Sandbox && !be.Enforces.Userns {
		v.Notes = append(v.Notes, fmt.Sprintf(NoteUsernsSandbox, v.Backend))
	}
	if v.Audit || v.Action != policy.Harden {
		return v, nil
	}
	if j.userns && !slices.Contains(v.Skip, policy.StepUserns) && managerUserns(in.Spec) {
		v.Notes = append(v.Notes, NoteUsernsKept)
	}
	if j.noLauncher && !slices.Contains(v.Skip, policy.StepLandlock) {
		v.Notes = append(v.Notes, NoteNoLauncher)
	}
	changes, err := j.hardener.Apply(&in, v.Skip)
	v.Changes = changes
	if err != nil {
		return v, err
	}
	v.Launched = harden.Launched(in.Spec)
	if err := j.verify(in, &v); err != nil {
		return v, err
	}
	v.Drift = j.driftOf(&v, in)
	return v, nil
}

// managerUserns reports whether the spec's manager made a user namespace
// with mappings of its own.
func managerUserns(s *specs.Spec) bool {
	if s.Linux == nil || len(s.Linux.UIDMappings) == 0 {
		return false
	}
	return slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace && ns.Path == ""
	})
}

// verify re-evaluates the rewritten spec and fails if a finding that a step
// exists to remove is still there. It guards against a step that silently
// did nothing: ward would rather refuse a container than run it with a
// hardening it only believes it applied.
func (j *Judge) verify(in policy.Input, v *Verdict) error {
	after := j.eval.Evaluate(in)
	steps := j.hardener.Steps()
	var left []string
	for _, f := range after.Findings {
		st := f.Check.FixedBy
		if st == "" || f.Waived != "" || !slices.Contains(steps, st) || slices.Contains(v.Skip, st) {
			continue
		}
		left = append(left, f.Check.ID+" ("+f.Path+")")
	}
	if len(left) > 0 {
		return fmt.Errorf("hardening left findings it should have removed: %s", strings.Join(left, ", "))
	}
	return nil
}

// Process judges an exec session's process against its container's
// decision: it refuses the escape shapes and applies the process-level
// hardening steps the container got. A container in a sandbox runtime gets
// only the refusal; its boundary is the sandbox. launched is whether the
// container's process runs under ward-init (Verdict.Launched,
// Report.UnderLauncher): the session then does too, whatever the policy
// says today.
func (j *Judge) Process(p *specs.Process, container *policy.Decision, launched bool) ([]harden.Change, error) {
	if err := bundle.ValidateProcess(p); err != nil {
		return nil, err
	}
	if policy.IsProcFD(p.Cwd) {
		return nil, fmt.Errorf("exec process.cwd %q is under /proc/<pid>/fd (CVE-2024-21626); refusing", p.Cwd)
	}
	if container.Audit || container.Action != policy.Harden {
		return nil, nil
	}
	return j.hardener.ApplyProcess(p, container.Skip, launched)
}
