package seccompbpf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// DefaultDir is where the front doors keep compiled filters: a root-owned
// directory on /run (a tmpfs), so filters do not outlive a reboot or a
// kernel upgrade that could change the profile. It is not under the
// shim's state directory (/run/ward, which may be 0750): runc must reach
// the files as the mount source for containers of every user namespace.
const DefaultDir = "/run/ward-seccomp"

// ProfileSource builds ward's profile for a final bounding capability set
// (profiles.SeccompGenerator).
type ProfileSource interface {
	Profile(caps []string) (*specs.LinuxSeccomp, error)
}

// maxCached bounds the in-memory index, as the generator's cache is.
const maxCached = 256

// Store compiles ward's profile once per capability set and keeps the
// program in a file named by its content's SHA-256, so a file is shared by
// every container (and every process) with the same policy, kernel and
// capability set, and a different policy can never reuse a stale one.
// Files are read back and checked before they are reused. It is safe for
// concurrent use.
type Store struct {
	dir    string
	native Arch
	src    ProfileSource
	// inputs is profiles.SeccompInputsDigest, "" to keep no index.
	inputs string
	// notify names the syscalls whose denials go to ward's supervisor
	// (CompileNotify); empty compiles plain filters.
	notify []string

	mu    sync.Mutex
	paths map[string]string
}

// NewStore returns a store in dir, creating dir (mode 0755: runc bind-mounts
// files from it into containers) if needed. inputs identifies what src's
// profiles depend on besides the capabilities (profiles.SeccompInputsDigest):
// with it, the store keeps an index from (inputs, capability set) to the
// filter's file, so that a process finds the filter another one compiled
// without generating the profile at all; "" keeps no index. With notify,
// the filters send those syscalls' denials to ward's supervisor
// (CompileNotify).
func NewStore(dir string, src ProfileSource, inputs string, notify []string) (*Store, error) {
	native, err := Native()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating seccomp filter directory: %w", err)
	}
	if inputs != "" {
		if err := os.MkdirAll(filepath.Join(dir, "index"), 0o700); err != nil {
			return nil, fmt.Errorf("creating seccomp filter index: %w", err)
		}
	}
	if len(notify) > 0 && inputs != "" {
		inputs += "\x00notify:" + strings.Join(notify, ",")
	}
	return &Store{dir: dir, native: native, src: src, inputs: inputs, notify: slices.Clone(notify), paths: make(map[string]string)}, nil
}

// Filter returns the host path of ward's compiled filter for a container
// whose bounding capability set is caps.
func (s *Store) Filter(caps []string) (string, error) {
	key := capsKey(caps)
	path, index, ok := s.lookup(key)
	if ok {
		return path, nil
	}
	p, err := s.src.Profile(caps)
	if err != nil {
		return "", err
	}
	var compiled prog.Program
	if len(s.notify) > 0 {
		compiled, err = CompileNotify(p, s.native, s.notify)
	} else {
		compiled, err = Compile(p, s.native)
	}
	if err != nil {
		return "", fmt.Errorf("compiling seccomp filter: %w", err)
	}
	if path, err = s.keep(compiled, index); err != nil {
		return "", err
	}
	s.remember(key, path)
	return path, nil
}

// keep writes p to its content-addressed file and, with index, the index
// entry naming it.
func (s *Store) keep(p prog.Program, index string) (string, error) {
	b, err := p.Marshal()
	if err != nil {
		return "", fmt.Errorf("encoding seccomp filter: %w", err)
	}
	sum := sha256.Sum256(b)
	path := filepath.Join(s.dir, hex.EncodeToString(sum[:])+".bpf")
	if err := s.ensure(path, b); err != nil {
		return "", err
	}
	if index != "" {
		if err := atomicfile.Write(index, []byte(filepath.Base(path)), 0o600, false); err != nil {
			return "", fmt.Errorf("writing seccomp filter index: %w", err)
		}
	}
	return path, nil
}

// Workload returns the host path of a workload's own profile p compiled
// (CompileWorkload) and composed with the baseline at base (a path Filter
// returned), once per (profile, baseline): the file is named by its
// content, the index entry by the profile's JSON and the baseline's name
// (with the inputs, as Filter's). It
// fails with ErrUnsupported for a profile runc must keep compiling.
func (s *Store) Workload(p *specs.LinuxSeccomp, base string) (string, error) {
	if filepath.Dir(base) != s.dir {
		return "", fmt.Errorf("composing seccomp filters: baseline %s is not in %s", base, s.dir)
	}
	enc, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encoding the workload's seccomp profile: %w", err)
	}
	sum := sha256.Sum256(append(append(enc, 0), filepath.Base(base)...))
	key := "workload:" + hex.EncodeToString(sum[:])
	path, index, ok := s.lookup(key)
	if ok {
		return path, nil
	}
	own, err := CompileWorkload(p, s.native)
	if err != nil {
		return "", fmt.Errorf("compiling the workload's seccomp profile: %w", err)
	}
	b, err := os.ReadFile(base)
	if err != nil {
		return "", fmt.Errorf("reading ward's seccomp filter: %w", err)
	}
	baseline, err := prog.Unmarshal(b, s.native.Audit)
	if err != nil {
		return "", fmt.Errorf("reading ward's seccomp filter %s: %w", base, err)
	}
	composed, err := Compose(baseline, own)
	if err != nil {
		return "", err
	}
	if path, err = s.keep(composed, index); err != nil {
		return "", err
	}
	s.remember(key, path)
	return path, nil
}

// lookup finds key's file in memory, or through the index (remembering
// it); otherwise index is the entry to write once it is compiled ("" when
// the store keeps no index).
func (s *Store) lookup(key string) (path, index string, ok bool) {
	s.mu.Lock()
	path, ok = s.paths[key]
	s.mu.Unlock()
	if ok {
		return path, "", true
	}
	index = s.indexPath(key)
	if path, ok = s.indexed(index); ok {
		s.remember(key, path)
	}
	return path, index, ok
}

func (s *Store) remember(key, path string) {
	s.mu.Lock()
	if len(s.paths) < maxCached {
		s.paths[key] = path
	}
	s.mu.Unlock()
}

// indexPath is the index entry for a capability set, "" without an index.
func (s *Store) indexPath(key string) string {
	if s.inputs == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s.inputs + "\x00" + key))
	return filepath.Join(s.dir, "index", hex.EncodeToString(sum[:]))
}

// indexed follows an index entry, and validates the filter it names: the
// file's SHA-256 is its name and it decodes as a program for this
// architecture. Anything else is a miss (the filter is compiled again).
func (s *Store) indexed(index string) (string, bool) {
	if index == "" {
		return "", false
	}
	name, err := os.ReadFile(index)
	if err != nil || len(name) != 2*sha256.Size+len(".bpf") || !strings.HasSuffix(string(name), ".bpf") {
		return "", false
	}
	path := filepath.Join(s.dir, string(name))
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:])+".bpf" != string(name) {
		return "", false
	}
	if _, err := prog.Unmarshal(b, s.native.Audit); err != nil {
		return "", false
	}
	return path, true
}

// ensure leaves b at path: it keeps an existing file only if it holds
// exactly b (a damaged or planted file is replaced), and writes it
// atomically otherwise.
func (s *Store) ensure(path string, b []byte) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && string(old) == string(b):
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading seccomp filter: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o444, false); err != nil {
		return fmt.Errorf("writing seccomp filter: %w", err)
	}
	return nil
}

// capsKey is caps as a set.
func capsKey(caps []string) string {
	c := slices.Clone(caps)
	slices.Sort(c)
	return strings.Join(slices.Compact(c), ",")
}
