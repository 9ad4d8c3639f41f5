// Package userns gives each pod a private range of host user and group IDs,
// so that root in a container is an unprivileged ID on the host.
//
// The ranges come from a pool configured like any other subordinate ID
// range, an entry for the user "ward" in /etc/subuid and /etc/subgid, and
// are handed out 65536 at a time (the full 16-bit ID space a container
// image expects). The allocator's state lives in one small file, changed
// under an exclusive file lock and replaced atomically, so concurrent shims
// and runtimes never hand out overlapping ranges, and a process killed in
// the middle of an allocation leaves either the old state or the new one.
package userns

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Range is a run of host IDs.
type Range struct {
	Start uint32 `json:"start"`
	Size  uint32 `json:"size"`
}

// End is one past the last ID.
func (r Range) End() uint64 { return uint64(r.Start) + uint64(r.Size) }

// Overlaps reports whether r and o share an ID.
func (r Range) Overlaps(o Range) bool {
	return uint64(r.Start) < o.End() && uint64(o.Start) < r.End()
}

// Contains reports whether id is in r.
func (r Range) Contains(id uint32) bool { return id >= r.Start && uint64(id) < r.End() }

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Start, r.End()-1) }

// SubIDEntry is one line of /etc/subuid or /etc/subgid.
type SubIDEntry struct {
	User  string
	Range Range
}

// ParseSubID reads a subordinate ID file ("name:start:count" per line).
// Errors name the line.
func ParseSubID(r io.Reader) ([]SubIDEntry, error) {
	var out []SubIDEntry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || f[0] == "" {
			return nil, fmt.Errorf("line %d: want name:start:count, got %q", n, line)
		}
		start, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: start: %w", n, err)
		}
		count, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || count == 0 {
			return nil, fmt.Errorf("line %d: count %q is not a positive 32-bit number", n, f[2])
		}
		if start+count > 1<<32 {
			return nil, fmt.Errorf("line %d: range ends past the 32-bit ID space", n)
		}
		out = append(out, SubIDEntry{User: f[0], Range: Range{Start: uint32(start), Size: uint32(count)}})
	}
	return out, sc.Err()
}

// Pool returns user's ranges from entries, and fails if any of them
// overlaps another user's range (the kubelet's "kubelet" entry, a rootless
// user's) or host IDs below 65536, where system and login accounts live.
func Pool(entries []SubIDEntry, user string) ([]Range, error) {
	var pool []Range
	for _, e := range entries {
		if e.User == user {
			pool = append(pool, e.Range)
		}
	}
	if len(pool) == 0 {
		return nil, fmt.Errorf("no subordinate ID range for %q; add a line such as %s:1000000000:65536000", user, user)
	}
	for _, r := range pool {
		if r.Start < 65536 {
			return nil, fmt.Errorf("range %s of %q starts below 65536, among the host's own accounts", r, user)
		}
		for _, e := range entries {
			if e.User != user && e.Range.Overlaps(r) {
				return nil, fmt.Errorf("range %s of %q overlaps %s of %q", r, user, e.Range, e.User)
			}
		}
	}
	return pool, nil
}

// Placeholder is the block `ward explain` shows when no allocator is in
// play: explanations stay the same on every machine, and say that a front
// door allocates the real block at create.
func Placeholder() Range { return Range{Start: 1000000000, Size: BlockSize} }

// LoadPool reads user's pool from a subuid and a subgid file. ward maps
// user and group IDs alike, so both files must give user the same ranges.
func LoadPool(subuid, subgid, user string) ([]Range, error) {
	var pools [2][]Range
	for i, name := range []string{subuid, subgid} {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading the user-namespace pool: %w", err)
		}
		entries, err := ParseSubID(strings.NewReader(string(data)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if pools[i], err = Pool(entries, user); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if !slices.Equal(pools[0], pools[1]) {
		return nil, fmt.Errorf("%s and %s give %q different ranges (%v, %v); ward maps user and group IDs alike", subuid, subgid, user, pools[0], pools[1])
	}
	return pools[0], nil
}

// DefaultStateDir is the node-wide allocator directory. It is on
// persistent storage: a writable layer keeps its block across reboots
// (LayerOwner), while the blocks of running containers and pods are void
// after one (see state.Boot).
const DefaultStateDir = "/var/lib/ward/userns"

// Config is where a front door finds the ID pool and keeps allocations
// (the `userns` section of ward-runtime's and the shim's configuration
// files). The policy's userns section says whether the step runs and which
// subordinate ID entry is the pool.
type Config struct {
	// SubUID and SubGID are the subordinate ID files ("" means
	// /etc/subuid and /etc/subgid).
	SubUID string `yaml:"subuid,omitempty"`
	SubGID string `yaml:"subgid,omitempty"`
	// StateDir holds the allocator's state and idmapped root filesystems.
	// Every ward-runtime and shim of a node must share it, or two
	// containers could get one block ("" means DefaultStateDir).
	StateDir string `yaml:"stateDir,omitempty"`
}

// WithDefaults fills in the empty fields.
func (c Config) WithDefaults() Config {
	if c.SubUID == "" {
		c.SubUID = "/etc/subuid"
	}
	if c.SubGID == "" {
		c.SubGID = "/etc/subgid"
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	return c
}

// Pool loads the pool named user from the configured files.
func (c Config) Pool(user string) ([]Range, error) {
	c = c.WithDefaults()
	return LoadPool(c.SubUID, c.SubGID, user)
}

// Allocator opens the node-wide allocator over pool.
func (c Config) Allocator(pool []Range) (*Allocator, error) {
	return NewAllocator(c.WithDefaults().StateDir, pool)
}

// InUse reports whether any block was ever allocated under the state
// directory, so that cleanup paths of front doors whose policy has the
// step off do not create it.
func (c Config) InUse() bool {
	_, err := os.Stat(filepath.Join(c.WithDefaults().StateDir, stateFile))
	return err == nil
}

// Release frees owner's block. The pool only matters for allocation, so
// any process may release without loading it.
func (c Config) Release(owner string, r Range) error {
	a, err := NewAllocator(c.WithDefaults().StateDir, []Range{r})
	if err != nil {
		return err
	}
	return a.Release(owner)
}

// PoolBlocks is how many blocks `ward install` gives the "ward" pool: far
// more pods than a node runs at once.
const PoolBlocks = 1024

// FreeRange finds size IDs overlapping none of entries, aligned to
// BlockSize, searching from 2^31 upwards and then down from there to
// 2^20: well above the IDs login accounts and useradd's subordinate ranges
// (from 100000) take, and above a kubelet that allocates pods from 65536.
func FreeRange(entries []SubIDEntry, size uint32) (Range, error) {
	free := func(start uint64) bool {
		r := Range{Start: uint32(start), Size: size}
		for _, e := range entries {
			if e.Range.Overlaps(r) {
				return false
			}
		}
		return true
	}
	const base = 1 << 31
	for s := uint64(base); s+uint64(size) <= 1<<32; s += BlockSize {
		if free(s) {
			return Range{Start: uint32(s), Size: size}, nil
		}
	}
	for s := uint64(base) - BlockSize; s >= 1<<20; s -= BlockSize {
		if free(s) {
			return Range{Start: uint32(s), Size: size}, nil
		}
	}
	return Range{}, fmt.Errorf("no free run of %d subordinate IDs above 2^20", size)
}
