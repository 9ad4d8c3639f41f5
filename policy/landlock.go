package policy

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/profiles"
)

// ProfileNone, as landlock.profile, turns the Landlock step off for every
// container. Single workloads are exempted with an exemption that skips the
// landlock step, which says why.
const ProfileNone = "none"

// Landlock is the policy file's landlock section: which Landlock profile a
// hardened container gets. Operators may write profiles of their own; they
// are validated with the policy and refused with the line at fault.
type Landlock struct {
	// Profile is the default profile ("" means profiles.LandlockDefault).
	Profile string `yaml:"profile"`
	// Profiles are the operator's own. A profile may extend a built-in
	// one or one defined above it; names must not shadow built-ins.
	Profiles []landlock.Profile `yaml:"profiles"`
	// Select chooses another profile for matching workloads. The first
	// match wins.
	Select []LandlockSelect `yaml:"select"`

	// resolved holds every profile by name, extends applied.
	resolved map[string]landlock.Profile
}

// LandlockSelect gives matching workloads a profile.
type LandlockSelect struct {
	Name    string `yaml:"name"`
	Reason  string `yaml:"reason"`
	Match   Match  `yaml:"match"`
	Profile string `yaml:"profile"`
}

// validate resolves and checks the section. It is called from
// Policy.validate.
func (l *Landlock) validate() error {
	builtin, err := profiles.LandlockProfiles()
	if err != nil {
		return err
	}
	l.resolved = make(map[string]landlock.Profile, len(builtin)+len(l.Profiles))
	for _, p := range builtin {
		l.resolved[p.Name] = p
	}
	for i, p := range l.Profiles {
		at := func(err error, keys ...any) error {
			return errAt(err, append([]any{"landlock", "profiles", i}, keys...)...)
		}
		if p.Name == ProfileNone {
			return at(errors.New(`"none" is reserved: it turns Landlock off`), "name")
		}
		if slices.ContainsFunc(builtin, func(b landlock.Profile) bool { return b.Name == p.Name }) {
			return at(fmt.Errorf("%q is a built-in profile; choose another name", p.Name), "name")
		}
		if _, dup := l.resolved[p.Name]; dup {
			return at(fmt.Errorf("duplicate profile name %q", p.Name), "name")
		}
		// The operator's own fields first, so that errors index their
		// own lists rather than the merged ones.
		own := p
		own.Rootfs |= landlock.Read
		own.WritableRootfs |= landlock.Read
		if err := own.Validate(); err != nil {
			return at(err)
		}
		if p.Extends != "" {
			base, ok := l.resolved[p.Extends]
			if !ok {
				return at(fmt.Errorf("unknown profile %q (a built-in one, or one defined above)", p.Extends), "extends")
			}
			p = p.Extend(base)
		} else if p.Rootfs == 0 || p.WritableRootfs == 0 {
			return at(errors.New("a profile that extends none must set rootfs and writableRootfs"))
		}
		if err := p.Validate(); err != nil {
			return at(err)
		}
		l.resolved[p.Name] = p
	}
	if l.Profile == "" {
		l.Profile = profiles.LandlockDefault
	}
	if _, ok := l.resolved[l.Profile]; !ok && l.Profile != ProfileNone {
		return errAt(fmt.Errorf("unknown profile %q (want %s, or none)", l.Profile, l.names()), "landlock", "profile")
	}
	if l.Profile == ProfileNone && len(l.Select) > 0 {
		return errAt(errors.New("select needs a default profile: with profile none, Landlock is off for every container (exec sessions could not tell who has it)"), "landlock", "select")
	}
	known := knownIDs()
	for i := range l.Select {
		s := &l.Select[i]
		at := func(err error, keys ...any) error {
			return errAt(err, append([]any{"landlock", "select", i}, keys...)...)
		}
		if s.Name == "" {
			return at(errors.New("missing"), "name")
		}
		if s.Reason == "" {
			return at(errors.New("missing: every choice is explained"), "reason")
		}
		if len(s.Match.Findings) > 0 || s.Match.Severity != nil {
			return at(errors.New("select matches workloads (namespaces, images, annotations), not findings"), "match")
		}
		if err := s.Match.validate(known); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				fe.keys = append([]any{"landlock", "select", i, "match"}, fe.keys...)
			}
			return err
		}
		if _, ok := l.resolved[s.Profile]; !ok {
			return at(fmt.Errorf("unknown profile %q (want %s; exempt a workload from Landlock with an exemption that skips %q)", s.Profile, l.names(), StepLandlock), "profile")
		}
	}
	return nil
}

func (l *Landlock) names() string {
	names := make([]string, 0, len(l.resolved))
	for n := range l.resolved {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}

// ProfileFor returns the profile for the container spec s describes, and
// the select rule that chose it ("" for the default). ok is false when
// Landlock is off.
func (l *Landlock) ProfileFor(s *specs.Spec) (p landlock.Profile, rule string, ok bool) {
	w := bundle.WorkloadOf(s)
	for _, sel := range l.Select {
		if len(sel.Match.Namespaces) > 0 && !matchAny(sel.Match.Namespaces, w.Namespace) {
			continue
		}
		if len(sel.Match.Images) > 0 && !matchAny(sel.Match.Images, w.Image) {
			continue
		}
		if !annotationsMatch(sel.Match.Annotations, s.Annotations) {
			continue
		}
		return l.resolved[sel.Profile], sel.Name, true
	}
	if l.Profile == ProfileNone {
		return landlock.Profile{}, "", false
	}
	p, ok = l.resolved[l.Profile]
	return p, "", ok
}

// Enabled reports whether hardened containers get Landlock: all of them
// do, or none.
func (l *Landlock) Enabled() bool {
	_, ok := l.resolved[l.Profile]
	return ok
}

func annotationsMatch(want, got map[string]string) bool {
	for k, v := range want {
		g, ok := got[k]
		if !ok || (v != "*" && g != v) {
			return false
		}
	}
	return true
}
