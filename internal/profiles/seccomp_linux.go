package profiles

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:embed seccomp/ward-overlay.json
var wardOverlay string

// overlay is the format of seccomp/ward-overlay.json.
type overlay struct {
	Profile  string        `json:"profile"`
	Comment  string        `json:"comment"`
	Syscalls []overlayRule `json:"syscalls"`
}

// overlayRule is a rule in moby's format, with the errno named rather than
// numbered because the numbers differ between architectures (ENOSYS is 38
// on amd64 and arm64, 89 on mips).
type overlayRule struct {
	seccomp.Syscall
	Errno string `json:"errno,omitempty"`
}

// NewSeccompGenerator returns a generator for ward's seccomp profile. It
// fails if the embedded overlay is invalid, or if the profile cannot be
// generated on this host. It generates the profile for the capability set
// warm right away, as that proof: pass the set most containers will end up
// with (the policy's allow-list), and their first profile is a cache hit
// rather than a second generation, in a process that judges one container
// and exits.
func NewSeccompGenerator(warm []string) (*SeccompGenerator, error) {
	return newSeccompGenerator(wardOverlay, warm)
}

func newSeccompGenerator(overlayJSON string, warm []string) (*SeccompGenerator, error) {
	rules, err := parseOverlay(overlayJSON)
	if err != nil {
		return nil, fmt.Errorf("parsing seccomp overlay: %w", err)
	}
	merged := mergeOverlay(seccomp.DefaultProfile(), rules)

	var capNames []string
	for _, r := range merged.Syscalls {
		for _, f := range []*seccomp.Filter{r.Includes, r.Excludes} {
			if f != nil {
				capNames = append(capNames, f.Caps...)
			}
		}
	}
	slices.Sort(capNames)
	capNames = slices.Compact(capNames)
	if len(capNames) > 64 {
		return nil, fmt.Errorf("seccomp profile depends on %d capabilities, more than a cache key holds", len(capNames))
	}
	capBits := make(map[string]uint, len(capNames))
	for i, c := range capNames {
		capBits[c] = uint(i)
	}

	body, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("encoding seccomp profile: %w", err)
	}
	g := &SeccompGenerator{
		body:     string(body),
		capBits:  capBits,
		capNames: capNames,
		cache:    make(map[uint64]*specs.LinuxSeccomp),
	}

	// Generate one profile now so that a profile the library rejects fails
	// ward at start-up rather than at the first container.
	key := g.key(warm)
	p, err := g.generate(key)
	if err != nil {
		return nil, fmt.Errorf("generating seccomp profile: %w", err)
	}
	g.cache[key] = p
	return g, nil
}

// parseOverlay decodes and checks the overlay, and turns its rules into
// moby's, errno numbers included.
func parseOverlay(data string) ([]*seccomp.Syscall, error) {
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	var o overlay
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the overlay object")
	}
	if o.Profile != SeccompProfileName {
		return nil, fmt.Errorf("overlay is for profile %q, this code generates %q", o.Profile, SeccompProfileName)
	}
	if len(o.Syscalls) == 0 {
		return nil, errors.New("overlay has no rules")
	}

	rules := make([]*seccomp.Syscall, 0, len(o.Syscalls))
	for i, r := range o.Syscalls {
		if err := checkOverlayRule(&r); err != nil {
			return nil, fmt.Errorf("rule %d %v: %w", i, r.Names, err)
		}
		rule := r.Syscall
		if r.Errno != "" {
			errno := errnoNumber(r.Errno)
			rule.ErrnoRet = &errno
		}
		rules = append(rules, &rule)
	}
	return rules, nil
}

// checkOverlayRule refuses anything that would make the overlay harder to
// review than a list of allows and errno denies, or that libseccomp would
// treat differently from how it reads.
func checkOverlayRule(r *overlayRule) error {
	if r.Name != "" {
		return errors.New(`"name" is deprecated, use "names"`)
	}
	if len(r.Names) == 0 || slices.Contains(r.Names, "") {
		return errors.New("rule names no syscall")
	}
	if r.Comment == "" {
		return errors.New("rule has no comment saying why it exists")
	}
	if r.ErrnoRet != nil {
		return errors.New(`"errnoRet" is architecture-specific, use "errno"`)
	}
	switch r.Action {
	case specs.ActAllow:
		if r.Errno != "" {
			return errors.New("errno on an allow rule")
		}
	case specs.ActErrno:
		if errnoNumber(r.Errno) == 0 {
			return fmt.Errorf("deny rule needs an errno of EPERM or ENOSYS, not %q", r.Errno)
		}
	default:
		return fmt.Errorf("action %q, want %s or %s", r.Action, specs.ActAllow, specs.ActErrno)
	}
	for _, f := range []*seccomp.Filter{r.Includes, r.Excludes} {
		if f == nil {
			continue
		}
		if f.MinKernel != nil {
			return errors.New("minKernel would make the overlay depend on the host kernel")
		}
		// A misspelt capability never matches, which silently turns an
		// exclusion into no condition at all.
		for _, c := range f.Caps {
			if !validCapName(c) {
				return fmt.Errorf("capability %q is not a CAP_ name", c)
			}
		}
	}
	for _, a := range r.Args {
		if a.Index > 5 {
			return fmt.Errorf("argument index %d, syscalls have 6", a.Index)
		}
		switch a.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan:
		case specs.OpMaskedEqual:
			// Bits outside the mask can never be equal, so such a rule never
			// matches; it is a typo, not a rule.
			if a.ValueTwo&^a.Value != 0 {
				return fmt.Errorf("masked comparison of argument %d wants bits %#x outside mask %#x", a.Index, a.ValueTwo&^a.Value, a.Value)
			}
		default:
			return fmt.Errorf("unknown operator %q", a.Op)
		}
	}
	return nil
}

// validCapName reports whether c is spelt like a runtime-spec capability.
func validCapName(c string) bool {
	rest, ok := strings.CutPrefix(c, "CAP_")
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if (r < 'A' || r > 'Z') && r != '_' {
			return false
		}
	}
	return true
}

// errnoNumber returns the host's number for the errnos the overlay may use,
// and 0 for any other name.
func errnoNumber(name string) uint {
	switch name {
	case "EPERM":
		return uint(unix.EPERM)
	case "ENOSYS":
		return uint(unix.ENOSYS)
	}
	return 0
}

// mergeOverlay removes every syscall the overlay names from base's rules and
// appends the overlay's rules. Removing rather than adding denies next to
// moby's allows is what makes the overlay work: libseccomp cannot combine an
// unconditional allow with an argument-filtered deny for one syscall.
func mergeOverlay(base *seccomp.Seccomp, rules []*seccomp.Syscall) *seccomp.Seccomp {
	owned := make(map[string]bool)
	for _, r := range rules {
		for _, n := range r.Names {
			owned[n] = true
		}
	}
	ownedName := func(n string) bool { return owned[n] }

	kept := base.Syscalls[:0]
	for _, r := range base.Syscalls {
		if r.Name != "" {
			r.Names, r.Name = []string{r.Name}, ""
		}
		r.Names = slices.DeleteFunc(r.Names, ownedName)
		if len(r.Names) > 0 {
			kept = append(kept, r)
		}
	}
	base.Syscalls = append(kept, rules...)
	// Only the native ABI: moby also lists each architecture's compat ABIs
	// (x86 and x32 beside x86_64, arm beside aarch64) so that 32-bit
	// binaries run. ward refuses them: the compat syscall entry points are
	// a kernel attack surface of their own that almost no container uses,
	// and every extra ABI is another copy of the filter runc compiles on
	// each container start (about 30 ms for three on this project's
	// machines). A compat-ABI system call hits libseccomp's bad-arch action
	// and kills the calling thread.
	for i := range base.ArchMap {
		base.ArchMap[i].SubArches = nil
	}
	return base
}

// generate builds the profile for the capability set key stands for.
func (g *SeccompGenerator) generate(key uint64) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: g.keyCaps(key),
	}}}
	p, err := seccomp.LoadProfile(g.body, rs)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errors.New("library returned no profile")
	}
	// Callers get shallow copies; clipping makes their appends copy instead
	// of writing into arrays other callers share.
	p.Syscalls = slices.Clip(p.Syscalls)
	p.Architectures = slices.Clip(p.Architectures)
	p.Flags = slices.Clip(p.Flags)
	return p, nil
}

// SeccompInputsDigest identifies everything ward's generated profile
// depends on besides the capability set: the overlay, the version of
// moby's profile it is merged into, the architecture and the kernel
// release (moby's kernel-dependent rules). Two processes with the same
// digest generate the same profile for the same capabilities, so a
// compiled filter can be cached under it across processes. It fails when
// the build does not record moby's version; callers then do not cache.
func SeccompInputsDigest() (string, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build information")
	}
	moby := ""
	for _, d := range bi.Deps {
		if d.Path == "github.com/moby/profiles/seccomp" {
			moby = d.Version + " " + d.Sum
			if d.Replace != nil {
				moby += " => " + d.Replace.Path + " " + d.Replace.Version + " " + d.Replace.Sum
			}
		}
	}
	if moby == "" {
		return "", errors.New("build information has no version of github.com/moby/profiles/seccomp")
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("reading kernel release: %w", err)
	}
	h := sha256.New()
	for _, part := range []string{SeccompProfileName, wardOverlay, moby, goruntime.GOARCH, unix.ByteSliceToString(u.Release[:])} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
