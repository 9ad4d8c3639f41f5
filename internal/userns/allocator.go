package userns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// BlockSize is how many IDs each pod gets: the whole 16-bit space an image's
// files and users assume.
const BlockSize = 65536

// ErrExhausted is returned when the pool has no free block.
var ErrExhausted = errors.New("user-namespace ID pool exhausted")

// Allocator hands out disjoint blocks of a pool. Its state is a file; every
// call takes the file lock, so any number of processes may share one.
type Allocator struct {
	dir  string
	pool []Range
	// beforeRename, when set (tests only), runs between writing the new
	// state and renaming it into place: the window a crash must survive.
	beforeRename func()
}

// state is the file's content.
type state struct {
	Version int `json:"version"`
	// Boot is the kernel's boot ID when the state was written. A block
	// owned by a running container (a pod's, say) does not survive a
	// reboot: those owners of another boot's state are void. A block
	// owned by a writable layer (LayerOwner) does: the layer's files are
	// stored with its host IDs.
	Boot   string           `json:"boot,omitempty"`
	Owners map[string]Range `json:"owners"`
}

// layerPrefix marks owners that are writable layers (LayerOwner).
const layerPrefix = "layer:"

// LayerOwner names the owner of a block that belongs to a container's
// writable layer, the directory that holds what the container wrote (an
// overlay's upper directory, or a plain root filesystem): its files carry
// the block's host IDs, so the layer keeps the block across stop and
// start (runc delete, then create with the same layer), daemon restarts
// and reboots, and gives it back only when the directory is gone (the
// container removed, its layer pruned). Such blocks are not released at
// delete; every call of the allocator frees those of layers that no
// longer exist.
func LayerOwner(layer string) string { return layerPrefix + filepath.Clean(layer) }

// layerGone reports whether owner is a writable layer that no longer
// exists.
func layerGone(owner string) bool {
	dir, ok := strings.CutPrefix(owner, layerPrefix)
	if !ok {
		return false
	}
	_, err := os.Lstat(dir)
	return errors.Is(err, os.ErrNotExist)
}

// bootIDPath names the current boot; it changes at every boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// NewAllocator uses dir (created if needed) for its state and pool for IDs.
func NewAllocator(dir string, pool []Range) (*Allocator, error) {
	if len(pool) == 0 {
		return nil, errors.New("userns allocator: empty pool")
	}
	for i, r := range pool {
		for _, o := range pool[i+1:] {
			if r.Overlaps(o) {
				return nil, fmt.Errorf("userns allocator: pool ranges %s and %s overlap", r, o)
			}
		}
	}
	// Searchable by all: idmapped root filesystems are mounted below it,
	// and a container's root (an unprivileged host ID) must reach them.
	// The state files themselves are 0600.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("userns allocator: %w", err)
	}
	return &Allocator{dir: dir, pool: append([]Range(nil), pool...)}, nil
}

// stateFile is the allocator's state, in its directory.
const stateFile = "ranges.json"

func (a *Allocator) statePath() string { return filepath.Join(a.dir, stateFile) }

// locked runs fn with the state under an exclusive lock, and writes the
// state back if fn says it changed. The kernel drops the lock when the
// process dies, so a killed holder never wedges the others.
func (a *Allocator) locked(fn func(*state) (bool, error)) error {
	lock, err := os.OpenFile(filepath.Join(a.dir, "ranges.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening userns lock: %w", err)
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return fmt.Errorf("locking userns state: %w", err)
	}
	// Holding the lock, any temporary file is a dead writer's.
	if stale, _ := filepath.Glob(filepath.Join(a.dir, ".ranges-*.tmp")); len(stale) > 0 {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	st, err := a.read()
	if err != nil {
		return err
	}
	boot, err := os.ReadFile(bootIDPath)
	if err != nil {
		return fmt.Errorf("reading the boot ID: %w", err)
	}
	reset := false
	if b := strings.TrimSpace(string(boot)); st.Boot != b {
		// Every container owner of another boot's state is gone with
		// that boot (a state without a boot ID predates the field: keep
		// it); writable layers are on disk and keep theirs.
		if st.Boot != "" {
			for o := range st.Owners {
				if !strings.HasPrefix(o, layerPrefix) {
					delete(st.Owners, o)
					reset = true
				}
			}
		}
		st.Boot = b
	}
	// The blocks of layers removed since are free (one lstat each).
	for o := range st.Owners {
		if layerGone(o) {
			delete(st.Owners, o)
			reset = true
		}
	}
	changed, err := fn(st)
	if err != nil || !changed && !reset {
		return err
	}
	return a.write(st)
}

func (a *Allocator) read() (*state, error) {
	st := &state{Version: 1, Owners: map[string]Range{}}
	data, err := os.ReadFile(a.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading userns state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		// Never guess on a corrupt state: handing out a range that is in
		// use would merge two pods' identities.
		return nil, fmt.Errorf("userns state %s is corrupt, refusing to allocate: %w", a.statePath(), err)
	}
	if st.Owners == nil {
		st.Owners = map[string]Range{}
	}
	return st, nil
}

// write replaces the state file atomically: a temporary file renamed over
// it, so a writer killed at any point leaves the old state or the new.
// The file is synced before the rename only when it holds a writable
// layer's block, which must survive a crash with the layer; a state of
// container owners alone is void after a crash anyway (see state.Boot).
func (a *Allocator) write(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(a.dir, ".ranges-*.tmp")
	if err != nil {
		return fmt.Errorf("writing userns state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing userns state: %w", err)
	}
	if st.holdsLayers() {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("writing userns state: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing userns state: %w", err)
	}
	if a.beforeRename != nil {
		a.beforeRename()
	}
	if err := os.Rename(tmp.Name(), a.statePath()); err != nil {
		return fmt.Errorf("writing userns state: %w", err)
	}
	return nil
}

// Allocate returns owner's block, allocating the lowest free one if owner
// has none yet. Calling it again for the same owner returns the same block,
// so a retried create does not leak IDs.
func (a *Allocator) Allocate(owner string) (Range, error) {
	if owner == "" {
		return Range{}, errors.New("userns allocator: empty owner")
	}
	var got Range
	err := a.locked(func(st *state) (bool, error) {
		if r, ok := st.Owners[owner]; ok {
			got = r
			return false, nil
		}
		r, ok := a.free(st)
		if !ok {
			return false, fmt.Errorf("%w: %d pods hold all blocks of %d IDs", ErrExhausted, len(st.Owners), BlockSize)
		}
		st.Owners[owner] = r
		got = r
		return true, nil
	})
	return got, err
}

// free finds the lowest block of the pool that no owner holds.
func (a *Allocator) free(st *state) (Range, bool) {
	used := make([]Range, 0, len(st.Owners))
	for _, r := range st.Owners {
		used = append(used, r)
	}
	sort.Slice(used, func(i, j int) bool { return used[i].Start < used[j].Start })
	for _, p := range a.pool {
		for start := uint64(p.Start); start+BlockSize <= p.End(); {
			cand := Range{Start: uint32(start), Size: BlockSize}
			clash := false
			for _, u := range used {
				if u.Overlaps(cand) {
					// Blocks are allocated at pool-aligned offsets, so the
					// end of one in use is the start of the next candidate.
					start = u.End()
					clash = true
					break
				}
			}
			if !clash {
				return cand, true
			}
		}
	}
	return Range{}, false
}

// Release frees owner's block. Releasing an owner without one is not an
// error: deletes are retried.
func (a *Allocator) Release(owner string) error {
	return a.locked(func(st *state) (bool, error) {
		if _, ok := st.Owners[owner]; !ok {
			return false, nil
		}
		delete(st.Owners, owner)
		return true, nil
	})
}

// Owners returns every allocated block by owner.
func (a *Allocator) Owners() (map[string]Range, error) {
	var out map[string]Range
	err := a.locked(func(st *state) (bool, error) {
		out = st.Owners
		return false, nil
	})
	return out, err
}

func (st *state) holdsLayers() bool {
	for o := range st.Owners {
		if strings.HasPrefix(o, layerPrefix) {
			return true
		}
	}
	return false
}
