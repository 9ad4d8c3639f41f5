// Package harden rewrites an OCI spec so that the container it describes
// runs with less of the host within reach.
//
// The rewrite is a fixed sequence of small steps, each a pure function of the
// spec. Every step is idempotent (applying the pipeline twice equals applying
// it once) and records each change it makes, so `ward explain --diff` can say
// what was changed and why. A step that cannot do its job returns an error,
// and the container does not start: ward never runs a half-hardened spec.
package harden

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/policy"
)

// Change is one modification a step made.
type Change struct {
	Step   string `json:"step"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

// Record is one pipeline run: its per-container input and the changes
// made so far.
type Record struct {
	// In is the call's input (read-only for steps). Steps are pure
	// functions of the spec and In: per-container facts a front door
	// established, such as the user-namespace ID block it allocated,
	// reach them here, never through the Hardener, which is shared.
	In      *policy.Input
	step    string
	Changes []Change
}

// Add notes that the running step changed the field at path.
func (r *Record) Add(path, detail string) {
	r.Changes = append(r.Changes, Change{Step: r.step, Path: path, Detail: detail})
}

// Step is one rewrite. Apply must be idempotent and must record every
// change it makes.
type Step struct {
	Name  string
	Apply func(s *specs.Spec, rec *Record) error
}

// SeccompSource builds a seccomp profile for a final bounding capability
// set. profiles.SeccompGenerator is the production one.
type SeccompSource interface {
	Profile(caps []string) (*specs.LinuxSeccomp, error)
}

// FilterSource compiles ward's seccomp profile for a final bounding
// capability set and returns the host path of the compiled filter, which
// ward-init installs (seccompbpf.Store is the production one). Workload
// compiles a container's own profile composed with the baseline at base
// (a path Filter returned); an error wrapping seccompbpf.ErrUnsupported
// leaves the profile to runc.
type FilterSource interface {
	Filter(caps []string) (string, error)
	Workload(p *specs.LinuxSeccomp, base string) (string, error)
}

// Options configure a Hardener.
type Options struct {
	// Capabilities is the allow-list; every capability set is cut to it.
	Capabilities []string
	// Seccomp provides the profile injected where there is none.
	Seccomp SeccompSource
	// Filters, when set, moves ward's seccomp baseline out of runc: for a
	// container that runs under ward-init (the Landlock step), the
	// compiled filter is bind-mounted at landlock.SeccompPath and
	// ward-init installs it; the container's own profile, if it has one,
	// is compiled and composed with it (landlock.ProfileSeccompPath), or
	// left to runc where ward's compiler cannot take it. Without Filters,
	// or without ward-init, the profile goes into linux.seccomp for runc
	// as before.
	Filters FilterSource
	// Supervisor, with Filters whose programs notify (CompileNotify), is
	// the host path of ward's supervisor socket: it is bind-mounted at
	// landlock.SupervisorPath, where ward-init hands it the listener.
	Supervisor string
	// Userns and Landlock are optional steps (their own packages provide
	// them); nil leaves them out. They run after the spec's privileges are
	// final and before the seccomp profile is generated.
	Userns   *Step
	Landlock *Step
}

// Hardener runs the pipeline. It is immutable and safe for concurrent use.
type Hardener struct {
	steps []Step
}

// New builds the pipeline.
func New(o Options) (*Hardener, error) {
	if o.Seccomp == nil {
		return nil, fmt.Errorf("building harden pipeline: no seccomp profile source")
	}
	allow := slices.Clone(o.Capabilities)
	steps := []Step{
		{Name: policy.StepCwd, Apply: refuseProcFDCwd},
		{Name: policy.StepCapabilities, Apply: capabilitiesStep(allow)},
		{Name: policy.StepNoNewPrivs, Apply: noNewPrivileges},
		{Name: policy.StepMaskedPaths, Apply: maskedPathsStep(MaskedPaths())},
		{Name: policy.StepReadonly, Apply: readonlyPathsStep(ReadonlyPaths())},
		{Name: policy.StepSysfs, Apply: sysfsReadonly},
	}
	for _, hook := range []*Step{o.Userns, o.Landlock} {
		if hook != nil {
			steps = append(steps, *hook)
		}
	}
	steps = append(steps, Step{Name: policy.StepSeccomp, Apply: seccompStep(o.Seccomp, o.Filters, o.Supervisor)})
	return &Hardener{steps: steps}, nil
}

// Steps names the pipeline's steps in order.
func (h *Hardener) Steps() []string {
	names := make([]string, len(h.steps))
	for i, st := range h.steps {
		names[i] = st.Name
	}
	return names
}

// Apply rewrites in.Spec in place, skipping the named steps, and returns
// what it changed. On error the spec may be partly rewritten and must not
// be run.
func (h *Hardener) Apply(in *policy.Input, skip []string) ([]Change, error) {
	s := in.Spec
	rec := Record{In: in, Changes: make([]Change, 0, 8)}
	for _, st := range h.steps {
		if slices.Contains(skip, st.Name) {
			continue
		}
		rec.step = st.Name
		if err := st.Apply(s, &rec); err != nil {
			return rec.Changes, fmt.Errorf("hardening (%s): %w", st.Name, err)
		}
	}
	return rec.Changes, nil
}

// ApplyProcess rewrites a process on its own, as an exec session brings one:
// the process-level steps only (cwd, capabilities, no_new_privs), and the
// launcher when the container has one. An exec runs inside the
// container's namespaces and gets the container's seccomp filters: runc
// installs linux.seccomp as it stays in the container's state, and
// ward-init the files the container has at landlock.SeccompPath and
// ProfileSeccompPath, and the container's Landlock ruleset.
//
// launched says whether the container's first process runs under
// ward-init (Launched of its hardened spec, kept by the front door from
// create). It decides, not today's policy or steps: the container's
// seccomp filters (its own profile included, which runc then does not
// install) reach an exec session only through ward-init, even after a
// reload that turned Landlock off, and a container created without
// ward-init's mounts cannot run it.
func (h *Hardener) ApplyProcess(p *specs.Process, skip []string, launched bool) ([]Change, error) {
	s := specs.Spec{Process: p}
	rec := Record{}
	for _, st := range h.steps {
		if slices.Contains(skip, st.Name) {
			continue
		}
		switch st.Name {
		case policy.StepCwd, policy.StepCapabilities, policy.StepNoNewPrivs:
		default:
			continue
		}
		rec.step = st.Name
		if err := st.Apply(&s, &rec); err != nil {
			return rec.Changes, fmt.Errorf("hardening exec process (%s): %w", st.Name, err)
		}
	}
	if launched {
		rec.step = policy.StepLandlock
		launchSession(p, &rec)
	}
	return rec.Changes, nil
}
