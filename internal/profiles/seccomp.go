// Package profiles builds the security profiles ward injects into OCI specs.
//
// The seccomp profile is moby's default profile (the one Docker and
// containerd ship as RuntimeDefault, taken from github.com/moby/profiles)
// with ward's overlay, seccomp/ward-overlay.json, applied on top. The overlay
// only takes permissions away: it refuses the key retention syscalls, bpf,
// perf_event_open, userfaultfd, io_uring, open_by_handle_at, kexec and module
// loading whatever the capabilities, ties the mount API to CAP_SYS_ADMIN,
// refuses CLONE_NEWUSER in unshare and clone, and refuses clone3 with ENOSYS.
//
// A generated profile depends on more than the capabilities:
//
//   - the architecture ward was built for: the profile lists that
//     architecture and its compatibility ABIs, and arch-specific rules
//     (arch_prctl on amd64, the clone argument order on s390) follow it;
//   - the host kernel: moby allows ptrace, process_vm_readv and
//     process_vm_writev without CAP_SYS_PTRACE on Linux 4.8 and later, where
//     ptrace can no longer be used to get around seccomp. moby reads the
//     kernel version once per process, so a profile generated on one host is
//     not necessarily right for another. The overlay has no kernel-dependent
//     rule.
//
// seccomp can only inspect arguments passed in registers, so clone3, whose
// flags sit behind a pointer, is refused with ENOSYS, and libcs fall back to
// clone. The clone rules follow moby's handling of s390, which passes the
// flags second, but ward supports and tests amd64 and arm64 only.
//
// The overlay's EPERM deny rules repeat the default action. runc (since
// opencontainers/runc#3109, in the 1.0 series) and crun skip such rules
// because libseccomp refuses them; they are
// there so that the profile states its intent, while the refusal itself
// comes from no allow rule matching.
//
// Generation needs Linux; elsewhere NewSeccompGenerator fails with a
// *nodeonly.Error, and a judge that only previews verdicts (`ward scan`,
// `ward explain` on a developer's machine) stands SeccompPreview in.
package profiles

import (
	"fmt"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// SeccompProfileName names the profile and its revision for decision logs.
// The revision changes whenever the overlay changes what it allows.
const SeccompProfileName = "ward-default/1"

// maxCachedSeccompProfiles bounds the cache so that a stream of specs with
// unusual capability sets cannot grow ward's memory without limit; profiles
// beyond it are generated on every call, which is slow but still correct.
// Real workloads use a handful of sets.
const maxCachedSeccompProfiles = 256

// SeccompGenerator builds ward's seccomp profile for a final capability set.
//
// It is safe for concurrent use. It caches one profile per distinct set of
// the bounding capabilities the profile depends on (CAP_SYS_ADMIN,
// CAP_SYS_PTRACE, CAP_BPF, ...), because generating a profile costs far more
// than the rest of ward's rewrite; capabilities no rule mentions do not
// create new entries.
type SeccompGenerator struct {
	// body is the merged moby and ward profile in moby's JSON format, still
	// holding its capability and architecture conditions.
	body string
	// capBits maps each capability a rule of body depends on to its bit in
	// a cache key; capNames is the inverse.
	capBits  map[string]uint
	capNames []string

	mu    sync.RWMutex
	cache map[uint64]*specs.LinuxSeccomp
}

// Profile returns ward's seccomp profile for a container whose bounding
// capability set is caps, given by the names the runtime spec uses
// ("CAP_SYS_ADMIN"). Order and duplicates do not matter; names are matched
// exactly, as runc does.
//
// The returned struct is the caller's own, so its fields can be replaced,
// but everything it points to (Syscalls and their Names and Args,
// Architectures, DefaultErrnoRet, ...) is shared with every other caller
// and must not be modified in place. Appending to Syscalls, Architectures
// or Flags is safe: they have no spare capacity, so append copies them. Use
// slices.Clone before changing an element.
func (g *SeccompGenerator) Profile(caps []string) (*specs.LinuxSeccomp, error) {
	key := g.key(caps)

	g.mu.RLock()
	p, ok := g.cache[key]
	g.mu.RUnlock()
	if !ok {
		// Generate outside the lock so that a miss does not stall callers
		// whose profile is cached; concurrent misses on one key may both
		// generate, and store keeps the first result.
		generated, err := g.generate(key)
		if err != nil {
			return nil, fmt.Errorf("generating seccomp profile: %w", err)
		}
		p = g.store(key, generated)
	}

	c := *p
	return &c, nil
}

// key reduces caps to the capabilities the profile depends on, so that the
// cache key, and with it the profile, is a function of those alone.
func (g *SeccompGenerator) key(caps []string) uint64 {
	var k uint64
	for _, c := range caps {
		if bit, ok := g.capBits[c]; ok {
			k |= 1 << bit
		}
	}
	return k
}

// keyCaps is the capability set key stands for.
func (g *SeccompGenerator) keyCaps(key uint64) []string {
	var caps []string
	for bit, name := range g.capNames {
		if key&(1<<bit) != 0 {
			caps = append(caps, name)
		}
	}
	return caps
}

// store caches p under key unless another caller got there first, and
// returns the cached profile so that all callers share one value.
func (g *SeccompGenerator) store(key uint64, p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cached, ok := g.cache[key]; ok {
		return cached
	}
	if len(g.cache) < maxCachedSeccompProfiles {
		g.cache[key] = p
	}
	return p
}

// LazySeccompGenerator is a SeccompGenerator built on first use, for a
// process that may never need one: a ward-runtime call whose compiled
// filter is already cached on the node.
type LazySeccompGenerator struct {
	warm []string
	once sync.Once
	gen  *SeccompGenerator
	err  error
}

// NewLazySeccompGenerator returns a generator that NewSeccompGenerator(warm)
// builds at the first Profile call.
func NewLazySeccompGenerator(warm []string) *LazySeccompGenerator {
	return &LazySeccompGenerator{warm: warm}
}

// Profile is SeccompGenerator.Profile.
func (l *LazySeccompGenerator) Profile(caps []string) (*specs.LinuxSeccomp, error) {
	l.once.Do(func() { l.gen, l.err = NewSeccompGenerator(l.warm) })
	if l.err != nil {
		return nil, l.err
	}
	return l.gen.Profile(caps)
}

// SeccompPreview stands in for ward's profile in a judge that only
// previews verdicts where the profile cannot be generated (off Linux):
// `ward scan` and `ward explain` on a developer's machine. Its profile
// refuses every system call, so that the checks that re-read the rewritten
// spec see a confined container, as they do with ward's profile, and the
// verdict is the node's. It is never run: `ward harden`, which writes a
// spec to run, and the front doors use the generator or fail. The change
// the seccomp step records says it is a stand-in (Standin).
type SeccompPreview struct{}

// Profile returns the stand-in profile.
func (SeccompPreview) Profile([]string) (*specs.LinuxSeccomp, error) {
	eperm := uint(1) // Linux's EPERM, whatever this system's is
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm}, nil
}

// Standin is what the seccomp step adds to the change it records.
func (SeccompPreview) Standin() string {
	return "previewed with a stand-in that refuses every system call: ward's profile is generated on the Linux node"
}

// IsUnconfined reports whether s leaves a container without any seccomp
// filter: s is nil, or, as runc treats it, has neither a default action nor
// any rule.
func IsUnconfined(s *specs.LinuxSeccomp) bool {
	return s == nil || (s.DefaultAction == "" && len(s.Syscalls) == 0)
}

// IsDefaultAllow reports whether s is a filter that allows every syscall it
// does not name (SCMP_ACT_ALLOW, or SCMP_ACT_LOG, which allows and logs).
// Such a profile is a deny list and is, for ward's purposes, as good as no
// profile. SCMP_ACT_TRACE and SCMP_ACT_NOTIFY do not count: without a tracer
// a traced syscall fails with ENOSYS, and with one, or with a notify
// listener, the decision belongs to a supervisor that someone configured on
// purpose. IsDefaultAllow is false for a nil s; see IsUnconfined.
func IsDefaultAllow(s *specs.LinuxSeccomp) bool {
	if s == nil {
		return false
	}
	switch s.DefaultAction {
	case specs.ActAllow, specs.ActLog:
		return true
	}
	return false
}
