package harden

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/policy"
)

// LandlockOptions configure the Landlock step.
type LandlockOptions struct {
	// Launcher is ward-init's absolute path on the host; it is
	// bind-mounted read-only at landlock.LauncherPath.
	Launcher string
	// Settings is the policy's landlock section.
	Settings *policy.Landlock
	// ABI is the Landlock ABI of the kernel containers will run on
	// (landlock.DetectABI), so that the record says what it cannot
	// enforce; -1 when unknown. The launcher checks again at start.
	ABI int
}

// NewLandlockStep returns the step that runs a hardened container's
// process under ward-init with the container's Landlock ruleset.
//
// At create it adds a small tmpfs at landlock.Dir and the launcher's bind
// mount inside it, prepends the launcher to process.args and sets
// landlock.EnvVar to the encoded ruleset. An exec session of a container
// that runs under ward-init runs under it too (launchSession): the
// launcher then reads the ruleset the container's first process left in
// landlock.Dir, so the session gets exactly the container's ruleset
// whatever the exec request says.
func NewLandlockStep(o LandlockOptions) (*Step, error) {
	if !path.IsAbs(o.Launcher) {
		return nil, fmt.Errorf("building landlock step: launcher path %q is not absolute", o.Launcher)
	}
	if o.Settings == nil {
		return nil, errors.New("building landlock step: no landlock settings")
	}
	l := &landlockStep{o: o}
	return &Step{Name: policy.StepLandlock, Apply: l.apply}, nil
}

type landlockStep struct{ o LandlockOptions }

func (l *landlockStep) apply(s *specs.Spec, rec *Record) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return nil
	}
	prof, rule, ok := l.o.Settings.ProfileFor(s)
	if !ok {
		return nil
	}
	rs := prof.Ruleset(containerOf(s, rec.In))
	enc, err := rs.Encode()
	if err != nil {
		return err
	}
	if err := l.mounts(s, rec); err != nil {
		return err
	}
	if s.Process.Args[0] != landlock.LauncherPath {
		s.Process.Args = append([]string{landlock.LauncherPath}, s.Process.Args...)
		chosen := "default profile"
		if rule != "" {
			chosen = "chosen by " + rule
		}
		detail := "run under ward-init with Landlock profile " + rs.Profile + " (" + chosen + ")" + rulesetSummary(rs)
		if l.o.ABI >= 0 {
			if eff := landlock.Degrade(rs, l.o.ABI); len(eff.NotEnforced) > 0 {
				detail += "; not enforced on this kernel (Landlock ABI " + strconv.Itoa(l.o.ABI) + "): " + strings.Join(eff.NotEnforced, "; ")
			}
			if err := landlock.Check(rs, l.o.ABI); err != nil {
				return err
			}
		}
		rec.Add("process.args", detail)
	}
	if setEnv(&s.Process.Env, landlock.EnvVar, enc) {
		rec.Add("process.env", landlock.EnvVar+" set to the "+rs.Profile+" ruleset")
	}
	return nil
}

// launchSession runs an exec session under ward-init (see
// NewLandlockStep and ApplyProcess): the launcher reads the ruleset and the
// seccomp filters the container's first process left, so any
// landlock.EnvVar the caller set is dropped.
func launchSession(p *specs.Process, rec *Record) {
	if len(p.Args) == 0 {
		return
	}
	if n := len(p.Env); n > 0 {
		p.Env = slices.DeleteFunc(slices.Clone(p.Env), func(kv string) bool { return strings.HasPrefix(kv, landlock.EnvVar+"=") })
		if len(p.Env) != n {
			rec.Add("process.env", "removed "+landlock.EnvVar+": an exec session gets the container's ruleset")
		}
	}
	if p.Args[0] != landlock.LauncherPath {
		p.Args = append([]string{landlock.LauncherPath}, p.Args...)
		rec.Add("process.args", "exec session runs under ward-init with the container's Landlock ruleset and seccomp filters")
	}
}

// mounts adds ward's directory and the launcher, refusing any other mount
// there: whoever controls those paths controls the ruleset.
func (l *landlockStep) mounts(s *specs.Spec, rec *Record) error {
	dir := specs.Mount{Destination: landlock.Dir, Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=64k"}}
	bin := specs.Mount{Destination: landlock.LauncherPath, Type: "bind", Source: l.o.Launcher,
		Options: []string{"bind", "ro", "nosuid", "nodev"}}
	var haveDir, haveBin bool
	for i, m := range s.Mounts {
		dst := path.Clean(m.Destination)
		if dst != landlock.Dir && !strings.HasPrefix(dst, landlock.Dir+"/") || dst == landlock.SeccompPath || dst == landlock.ProfileSeccompPath || dst == landlock.SupervisorPath {
			// The seccomp step owns (and checks) its files.
			continue
		}
		switch {
		case !haveDir && !haveBin && sameMount(m, dir):
			haveDir = true
		case haveDir && !haveBin && sameMount(m, bin):
			haveBin = true
		default:
			return fmt.Errorf("mounts[%d]: %s is reserved for ward's Landlock launcher", i, m.Destination)
		}
	}
	switch {
	case haveDir && haveBin:
		return nil
	case haveDir:
		return fmt.Errorf("mounts: %s is mounted without the launcher", landlock.Dir)
	}
	// Last, so that nothing the spec mounts can cover them.
	s.Mounts = append(slices.Clip(s.Mounts), dir, bin)
	rec.Add("mounts", "added "+landlock.Dir+" (tmpfs) and ward-init at "+landlock.LauncherPath+" (read-only bind of "+l.o.Launcher+")")
	return nil
}

func sameMount(a, b specs.Mount) bool {
	return path.Clean(a.Destination) == b.Destination && a.Type == b.Type && a.Source == b.Source && slices.Equal(a.Options, b.Options)
}

// rulesetSummary says in the record what the ruleset means for the
// workload, drift included: where write-xor-execute is not enforced,
// the decision says so (runtime drift detection is issue 16's, and will
// judge what it sees with landlock.Ruleset.AccessAt against wx).
func rulesetSummary(rs landlock.Ruleset) string {
	var out string
	switch e := rs.Enforced(); {
	case rs.Audit:
		out = ": audit, nothing refused but what is always enforced; the container log names what it would refuse"
	case e.Unrestricted():
		out = ": nothing restricted"
	}
	if rs.HostNetwork {
		out += "; abstract UNIX sockets scoped to the container (it may share the host's network namespace: CVE-2020-15257)"
	}
	if !refusesDrift(rs) {
		out += "; drift (write, then execute) not refused: write-xor-execute is opt-in (annotation " + AnnotationLandlock + ": wx)"
	}
	return out
}

// refusesDrift reports whether rs is write-xor-execute: what the container
// can write (its /tmp stands for every such place) it cannot execute.
func refusesDrift(rs landlock.Ruleset) bool {
	return !rs.Audit && rs.AccessAt("/tmp")&landlock.Exec == 0
}

// DriftRefused reports whether the hardened spec s runs under a Landlock
// ruleset that refuses drift (write-xor-execute, `ward.dev/landlock: wx`
// or a policy's select): the ruleset the landlock step gave ward-init.
func DriftRefused(s *specs.Spec) bool {
	if !Launched(s) {
		return false
	}
	for _, kv := range s.Process.Env {
		if enc, ok := strings.CutPrefix(kv, landlock.EnvVar+"="); ok {
			rs, err := landlock.Decode(enc)
			return err == nil && refusesDrift(rs)
		}
	}
	return false
}

// AnnotationLandlock is the annotation the default policy's landlock
// select reads: wx opts a workload into write-xor-execute, wx-audit
// reports what wx would refuse.
const AnnotationLandlock = "ward.dev/landlock"

// SharesHostNetwork reports whether the container may be in the host's
// network namespace: none of its own, or a path that reaches the host's
// or that ward cannot resolve. A CRI app container joins its pod's
// namespace by path; the pod's verdict says whether that is the host's.
// Any other path is judged by the namespace it reaches (the node facts).
func SharesHostNetwork(s *specs.Spec, in *policy.Input) bool {
	if s.Linux == nil {
		return true
	}
	i := slices.IndexFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	if i < 0 {
		return true
	}
	if s.Linux.Namespaces[i].Path == "" {
		return false
	}
	if in == nil {
		return true
	}
	switch {
	case in.Pod != nil:
		return slices.ContainsFunc(in.Pod.Findings, func(f policy.Finding) bool { return f.ID() == policy.IDHostNetwork })
	case in.Workload.Kind == bundle.Sandbox:
		// The CRI plugin creates the pod's namespace and hands the
		// sandbox its path; a host-network sandbox has no entry.
		return false
	}
	// Joined by path (Docker's and Podman's --network container:X, a
	// Podman pod's members): what it reaches on the node says whose.
	host, known := in.Node.HostNamespace(specs.NetworkNamespace, s.Linux.Namespaces[i].Path)
	return host || !known
}

// containerOf reads what a ruleset depends on from the spec.
func containerOf(s *specs.Spec, in *policy.Input) landlock.Container {
	c := landlock.Container{ReadonlyRoot: s.Root != nil && s.Root.Readonly, HostNetwork: SharesHostNetwork(s, in)}
	for _, m := range s.Mounts {
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		c.Mounts = append(c.Mounts, landlock.Mount{
			Destination: m.Destination,
			Volume:      bind || m.Type == "tmpfs",
			ReadOnly:    slices.Contains(m.Options, "ro"),
		})
	}
	return c
}

// setEnv sets key=value in env, replacing every other value of key, and
// reports whether env changed.
func setEnv(env *[]string, key, value string) bool {
	kv := key + "=" + value
	prefix := key + "="
	n := 0
	for _, e := range *env {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	if n == 1 && slices.Contains(*env, kv) {
		return false
	}
	out := make([]string, 0, len(*env)+1)
	for _, e := range *env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	*env = append(out, kv)
	return true
}
