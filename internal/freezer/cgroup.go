package freezer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is a cgroup's freezer state, in v1's words.
type State string

const (
	Thawed   State = "THAWED"
	Freezing State = "FREEZING"
	Frozen   State = "FROZEN"
)

// Cgroup is one cgroup of a Hierarchy.
type Cgroup struct {
	Hierarchy
	// Path is the cgroup's path inside the hierarchy, absolute and clean
	// ("/kubepods/besteffort/pod.../cri-containerd-<id>.scope").
	Path string
}

// Cgroup names the cgroup at p inside h. The hierarchy's root is refused:
// ward freezes containers, never the node.
func (h Hierarchy) Cgroup(p string) (*Cgroup, error) {
	if h.Version != 1 && h.Version != 2 {
		return nil, fmt.Errorf("cgroup hierarchy version %d: want 1 or 2", h.Version)
	}
	if !path.IsAbs(p) || path.Clean(p) != p || strings.Contains(p, "/../") {
		return nil, fmt.Errorf("cgroup path %q is not absolute and clean", p)
	}
	if p == "/" {
		return nil, errors.New("refusing the root cgroup: it holds the whole node")
	}
	return &Cgroup{Hierarchy: h, Path: p}, nil
}

// Dir is the cgroup's directory.
func (c *Cgroup) Dir() string { return filepath.Join(c.Root, filepath.FromSlash(c.Path)) }

func (c *Cgroup) String() string { return fmt.Sprintf("cgroup v%d %s", c.Version, c.Path) }

func (c *Cgroup) file(name string) string { return filepath.Join(c.Dir(), name) }

// State reads the cgroup's freezer state. A v2 cgroup reads FROZEN when
// it (or an ancestor) is frozen, FREEZING while cgroup.freeze is set but
// not yet in effect, THAWED otherwise.
func (c *Cgroup) State() (State, error) {
	if c.Version == 1 {
		b, err := c.read("freezer.state")
		if err != nil {
			return "", err
		}
		s := State(strings.TrimSpace(string(b)))
		switch s {
		case Thawed, Freezing, Frozen:
			return s, nil
		}
		return "", fmt.Errorf("%s: unexpected freezer.state %q", c, s)
	}
	want, err := c.read("cgroup.freeze")
	if err != nil {
		return "", err
	}
	frozen, err := c.eventsFrozen()
	if err != nil {
		return "", err
	}
	switch {
	case frozen:
		return Frozen, nil
	case strings.TrimSpace(string(want)) == "1":
		return Freezing, nil
	}
	return Thawed, nil
}

// eventsFrozen reads the "frozen" key of a v2 cgroup's cgroup.events.
func (c *Cgroup) eventsFrozen() (bool, error) {
	b, err := c.read("cgroup.events")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "frozen "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, fmt.Errorf("%s: cgroup.events has no frozen key", c)
}

// read reads one of the cgroup's files. A v2 cgroup without cgroup.freeze
// is a kernel older than 5.2; a missing directory is a cgroup that is gone
// (fs.ErrNotExist).
func (c *Cgroup) read(name string) ([]byte, error) {
	b, err := os.ReadFile(c.file(name))
	if err != nil {
		return nil, c.fileErr(name, err)
	}
	return b, nil
}

func (c *Cgroup) write(name, value string) error {
	// Without O_CREAT: a cgroup file is written, never made, so a vanished
	// cgroup is an error, not a new file. (O_TRUNC means nothing to the
	// kernel's files; it keeps a plain-file test tree readable.)
	f, err := os.OpenFile(c.file(name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return c.fileErr(name, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: writing %s: %w", c, name, err)
	}
	return nil
}

func (c *Cgroup) fileErr(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(c.Dir()); derr == nil {
			switch {
			case c.Version == 2 && (name == "cgroup.freeze" || name == "cgroup.events"):
				return fmt.Errorf("%s: %w", c, &NotSupportedError{Feature: "cgroup v2 freezer (cgroup.freeze)", MinimumVersion: "5.2"})
			case c.Version == 1 && name == "freezer.state":
				return fmt.Errorf("%s: %w", c, &NotSupportedError{Feature: "cgroup v1 freezer (freezer.state)", MinimumVersion: "2.6.28"})
			}
		}
	}
	return fmt.Errorf("%s: %w", c, err)
}

// Freeze freezes every process in the cgroup and its descendants and
// returns once the kernel says FROZEN. When ctx ends first the cgroup is
// left as it is (partly frozen, perhaps), and Thaw undoes it.
func (c *Cgroup) Freeze(ctx context.Context) error {
	set, value := c.control(true)
	if err := c.write(set, value); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	return c.wait(ctx, Frozen, func() error {
		// A v1 cgroup stays FREEZING while a task escapes the first pass
		// (one forked meanwhile); writing FROZEN again retries it, as
		// runc does.
		if c.Version == 1 {
			return c.write(set, value)
		}
		return nil
	})
}

// Thaw thaws the cgroup and returns once it is THAWED. A cgroup whose
// parent is frozen stays FROZEN in v2: that is an error here, not ward's
// to undo.
func (c *Cgroup) Thaw(ctx context.Context) error {
	set, value := c.control(false)
	if err := c.write(set, value); err != nil {
		return fmt.Errorf("thawing: %w", err)
	}
	return c.wait(ctx, Thawed, nil)
}

// control is the file and value that ask for a state.
func (c *Cgroup) control(freeze bool) (file, value string) {
	switch {
	case c.Version == 1 && freeze:
		return "freezer.state", string(Frozen)
	case c.Version == 1:
		return "freezer.state", string(Thawed)
	case freeze:
		return "cgroup.freeze", "1"
	}
	return "cgroup.freeze", "0"
}

// wait polls until the cgroup reaches want, calling retry (if any) between
// polls. Freezing takes well under a millisecond on an idle cgroup, so the
// first polls come quickly and later ones back off to 10 ms.
func (c *Cgroup) wait(ctx context.Context, want State, retry func() error) error {
	delay := 50 * time.Microsecond
	for {
		s, err := c.State()
		if err != nil {
			return err
		}
		if s == want {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: still %s, waiting for %s: %w", c, s, want, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 10*time.Millisecond)
		if retry != nil {
			if err := retry(); err != nil {
				return err
			}
		}
	}
}

// Pids lists the processes (thread-group IDs) in the cgroup and all its
// descendants, sorted.
func (c *Cgroup) Pids() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(c.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A child cgroup removed during the walk is not an error.
			if errors.Is(err, fs.ErrNotExist) && p != c.Dir() {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) && p != c.Dir() {
			return nil
		}
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("%s/cgroup.procs: bad pid %q", p, f)
			}
			pids = append(pids, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: listing processes: %w", c, err)
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// thawTimeout bounds Kill's thaw: a thaw takes effect at once unless an
// ancestor is frozen too.
const thawTimeout = 5 * time.Second

// Killed is what Kill did.
type Killed struct {
	// Pids are the processes signalled.
	Pids []int
	// Frozen is true when they were signalled while frozen, the only way
	// no fork can slip between listing and signalling.
	Frozen bool
	// FreezeErr says why they were not, when Frozen is false.
	FreezeErr error
}

// Kill freezes the cgroup, sends SIGKILL to every process in it and its
// descendants, thaws it so the signals are delivered, and waits until no
// process is left. If the cgroup cannot be frozen (no freezer, a freeze
// that does not finish) it still kills, listing and signalling until the
// cgroup is empty, and says so in Killed.
func (c *Cgroup) Kill(ctx context.Context) (Killed, error) {
	var k Killed
	if err := c.Freeze(ctx); err != nil {
		if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrNotSupported) {
			return k, fmt.Errorf("killing: %w", err)
		}
		k.FreezeErr = err
	} else {
		k.Frozen = true
	}
	delay := 50 * time.Microsecond
	for round := 0; ; round++ {
		pids, err := c.Pids()
		if err != nil {
			return k, fmt.Errorf("killing: %w", err)
		}
		if len(pids) == 0 {
			return k, nil
		}
		for _, p := range pids {
			if !slices.Contains(k.Pids, p) {
				k.Pids = append(k.Pids, p)
			}
			if err := kill(p); err != nil {
				return k, fmt.Errorf("killing pid %d of %s: %w", p, c, err)
			}
		}
		if round == 0 && !errors.Is(k.FreezeErr, ErrNotSupported) {
			// Frozen (or partly, after a freeze that timed out): the
			// signals take effect once thawed. Thawed even when ctx has
			// ended, or the container would stay frozen for good.
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thawTimeout)
			err := c.Thaw(tctx)
			cancel()
			if err != nil {
				return k, fmt.Errorf("killing: %w", err)
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return k, fmt.Errorf("killing %s: processes left: %w", c, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}
