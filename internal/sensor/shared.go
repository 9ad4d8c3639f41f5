//go:build linux

package sensor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/procstat"
	"github.com/ward-runtime/ward/internal/recordfile"
)

// Digest names this build's program: the first 16 hex digits of the
// SHA-256 of the embedded object and the Toolchain the load writes into
// it. An upgraded ward pins its program beside the older one and never
// attaches to the older program's maps.
func Digest() string {
	h := sha256.New()
	h.Write(_SensorBytes)
	for _, name := range Toolchain() {
		h.Write([]byte{0})
		h.Write([]byte(name))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// instanceDir is the pin directory of the sensors of stateDir.
func instanceDir(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = filepath.Clean(stateDir)
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(PinRoot, hex.EncodeToString(sum[:8]))
}

// Shared is this process's handle on the node-wide sensor of a state
// directory: the program loaded once and pinned in bpffs, its links
// pinned too, so it keeps running without any process holding it. Every
// supervisor opens it (cheap: a pinned map, no BTF), adds its
// containers' cgroups with Watch, and one of them at a time (Lead) reads
// the ring buffer for all of them.
//
// Files under <stateDir>/sensor coordinate the supervisors: load.lock
// (held while the program is looked up or loaded), <digest>.users (held
// shared by every process that uses the program, so that a newer ward
// removes an older program only when nobody uses it any more),
// <digest>.reader (held by the one reader) and containers/<cgroup ID>.json
// (what the reader needs to attribute an event: the container's record,
// opaque here).
type Shared struct {
	// LSM is nil when a BPF-LSM program loaded and attached (ward could
	// deny, not only see), else why not. Only the process that loaded the
	// program probes it; the others have ErrLSMUnprobed.
	LSM error
	// Loaded is true when this process loaded and pinned the program.
	Loaded bool

	dir, state, digest string
	users              *os.File
	containers         *ebpf.Map
}

// ErrLSMUnprobed is Shared.LSM in a process that found the program
// already pinned.
var ErrLSMUnprobed = errors.New("BPF-LSM probed by the process that loaded the sensor")

// SharedOptions say where the shared sensor lives.
type SharedOptions struct {
	// StateDir is ward's state directory; the sensor's lock and record
	// files are in its sensor/ subdirectory.
	StateDir string
	// Mount mounts tracefs at /sys/kernel/tracing and bpffs at
	// /sys/fs/bpf when they are not mounted (systemd mounts both at boot).
	Mount bool
}

// Open opens the state directory's node-wide sensor, loading and pinning
// it when no process has yet.
func Open(o SharedOptions) (_ *Shared, err error) {
	if o.StateDir == "" {
		return nil, errors.New("the shared sensor needs a state directory")
	}
	s := &Shared{state: filepath.Join(o.StateDir, "sensor"), digest: Digest()}
	s.dir = filepath.Join(instanceDir(o.StateDir), s.digest)
	if err := os.MkdirAll(filepath.Join(s.state, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("sensor state directory: %w", err)
	}
	lock, err := lockFile(filepath.Join(s.state, "load.lock"), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if s.users, err = lockFile(filepath.Join(s.state, s.digest+".users"), unix.LOCK_SH); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.users.Close()
		}
	}()
	if err := bpffs(o.Mount); err != nil {
		return nil, err
	}
	s.containers, err = ebpf.LoadPinnedMap(filepath.Join(s.dir, "containers"), nil)
	switch {
	case err == nil:
		s.LSM = ErrLSMUnprobed
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, loadError(fmt.Errorf("opening the pinned sensor %s: %w", s.dir, err))
	}
	if err := tracefs(o.Mount); err != nil {
		return nil, err
	}
	if err := s.load(o.StateDir); err != nil {
		return nil, err
	}
	s.Loaded, s.LSM = true, ProbeLSM()
	releaseKernelBTF()
	sweepPins(o.StateDir, s.state, s.digest)
	return s, nil
}

// load loads the program, attaches it and pins its links and maps; the
// containers map is pinned last, so that its pin says the rest is there.
func (s *Shared) load(stateDir string) (err error) {
	// A loader that died half-way left a directory without containers.
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("removing the half-pinned sensor %s: %w", s.dir, err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("pinning the sensor: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(s.dir)
		}
	}()
	if err := pinOwner(filepath.Dir(s.dir), stateDir); err != nil {
		return err
	}
	var objs sensorObjects
	if err := loadSensorObjects(&objs, nil); err != nil {
		return loadError(err)
	}
	// The process's handles go; the pins keep links, programs and maps.
	defer objs.Close()
	if err := fillToolchain(objs.Toolchain); err != nil {
		return err
	}
	links, err := attach(&objs)
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	if err != nil {
		return err
	}
	pin := func(name string, p interface{ Pin(string) error }) error {
		if err := p.Pin(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("pinning the sensor's %s in %s: %w", name, s.dir, err)
		}
		return nil
	}
	for _, l := range links {
		if err := pin("link_"+l.Name, l.Link); err != nil {
			return err
		}
	}
	for name, m := range map[string]*ebpf.Map{"events": objs.Events, "pending": objs.Pending, "written": objs.Written} {
		if err := pin(name, m); err != nil {
			return err
		}
	}
	if err := pin("containers", objs.Containers); err != nil {
		return err
	}
	if s.containers, err = objs.Containers.Clone(); err != nil {
		return fmt.Errorf("keeping the sensor's containers map: %w", err)
	}
	return nil
}

// ownerValue is the size of the owner map's one value: the state
// directory's path, NUL-padded.
const ownerValue = 4096

// pinOwner pins, once per instance, a one-entry map holding the state
// directory's path: bpffs holds no files, and `ward doctor` and later
// loads need to tell whose the pins are (a test's removed state directory
// leaves pins nobody will use).
func pinOwner(inst, stateDir string) error {
	p := filepath.Join(inst, "owner")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil || len(abs) >= ownerValue {
		return fmt.Errorf("the state directory %q cannot be recorded in bpffs: %v", stateDir, err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "ward_owner", Type: ebpf.Array, KeySize: 4, ValueSize: ownerValue, MaxEntries: 1})
	if err != nil {
		return loadError(fmt.Errorf("creating the sensor's owner map: %w", err))
	}
	defer m.Close()
	v := make([]byte, ownerValue)
	copy(v, abs)
	if err := m.Update(uint32(0), v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("recording the sensor's owner: %w", err)
	}
	if err := m.Pin(p); err != nil {
		return fmt.Errorf("pinning the sensor's owner: %w", err)
	}
	return nil
}

// readOwner is the state directory an instance's pins belong to.
func readOwner(inst string) (string, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(inst, "owner"), nil)
	if err != nil {
		return "", err
	}
	defer m.Close()
	v := make([]byte, ownerValue)
	if err := m.Lookup(uint32(0), &v); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(v, "\x00")), nil
}

// sweepPins removes the pins nobody can use any more: this instance's
// older programs whose users lock is free, and instances whose state
// directory is gone (a test's, a removed installation's). What it cannot
// remove it leaves for `ward doctor` to report.
func sweepPins(stateDir, state, digest string) {
	inst := instanceDir(stateDir)
	ents, _ := os.ReadDir(inst)
	for _, e := range ents {
		if !e.IsDir() || e.Name() == digest {
			continue
		}
		f, err := lockFile(filepath.Join(state, e.Name()+".users"), unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			continue
		}
		if os.RemoveAll(filepath.Join(inst, e.Name())) == nil {
			for _, suffix := range []string{".users", ".reader"} {
				os.Remove(filepath.Join(state, e.Name()+suffix))
			}
		}
		f.Close()
	}
	removeOrphans(inst)
}

// RemoveOrphans unpins the sensors of state directories that are gone
// (nobody can use them: their locks and records went with them); a test
// harness calls it after removing its state directories.
func RemoveOrphans() []string { return removeOrphans("") }

// removeOrphans is RemoveOrphans, sparing the instance keep.
func removeOrphans(keep string) []string {
	var out []string
	insts, _ := instances()
	for _, dir := range insts {
		if dir == keep {
			continue
		}
		owner, err := readOwner(dir)
		if err != nil {
			continue
		}
		if _, err := os.Stat(owner); errors.Is(err, fs.ErrNotExist) && os.RemoveAll(dir) == nil {
			out = append(out, dir)
		}
	}
	return out
}

// lockFile opens (creating) path and flocks it, waiting unless how has
// LOCK_NB.
func lockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sensor lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

// bpffs makes sure bpffs is mounted at /sys/fs/bpf, mounting it when
// asked.
func bpffs(mount bool) error {
	const bpfFSMagic = 0xcafe4a11
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/bpf", &st) == nil && st.Type == bpfFSMagic {
		return nil
	}
	if !mount {
		return &NotSupportedError{Feature: "pinning BPF objects (bpffs is not mounted: mount -t bpf bpf /sys/fs/bpf)"}
	}
	if err := os.MkdirAll("/sys/fs/bpf", 0o755); err != nil {
		return &NotSupportedError{Feature: "pinning BPF objects (no /sys/fs/bpf)", Err: err}
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=700"); err != nil {
		return &NotSupportedError{Feature: "pinning BPF objects (mounting bpffs at /sys/fs/bpf)", Err: err}
	}
	return nil
}

// record is what containers/<cgroup ID>.json holds.
type record struct {
	// Cgroup is the cgroup v2 directory, ID its CgroupID: when the
	// directory is gone or is another cgroup, the record is stale.
	Cgroup string          `json:"cgroup"`
	ID     uint64          `json:"id"`
	Meta   json.RawMessage `json:"meta"`
}

// records is the directory of records, one per watched cgroup ID.
func (s *Shared) records() recordfile.Dir {
	return recordfile.Dir{Path: filepath.Join(s.state, "containers"), Perm: 0o600, What: "sensor record", Max: 1 << 20}
}

func recordID(id uint64) string { return strconv.FormatUint(id, 10) }

// Watch adds the cgroup v2 directory dir (a container's) to the watched
// set, with meta (JSON) for the reader to attribute its events; it
// returns the cgroup's ID for Unwatch.
func (s *Shared) Watch(dir string, meta json.RawMessage) (uint64, error) {
	id, err := CgroupID(dir)
	if err != nil {
		return 0, err
	}
	// The record first: the reader must find it for the first event.
	if err := s.records().Write(recordID(id), record{Cgroup: dir, ID: id, Meta: meta}); err != nil {
		return 0, fmt.Errorf("watching cgroup %d: %w", id, err)
	}
	if err := s.containers.Update(id, uint8(1), ebpf.UpdateAny); err != nil {
		s.records().Remove(recordID(id))
		return 0, fmt.Errorf("watching cgroup %d: %w", id, err)
	}
	return id, nil
}

// Unwatch removes a cgroup and its record; an unwatched cgroup is not an
// error.
func (s *Shared) Unwatch(id uint64) error {
	err := s.containers.Delete(id)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil
	}
	if rerr := s.records().Remove(recordID(id)); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("unwatching cgroup %d: %w", id, err)
	}
	return nil
}

// Watched lists the watched cgroup IDs.
func (s *Shared) Watched() ([]uint64, error) {
	var out []uint64
	var k uint64
	var v uint8
	it := s.containers.Iterate()
	for it.Next(&k, &v) {
		out = append(out, k)
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("listing the watched cgroups: %w", err)
	}
	return out, nil
}

// Meta is what Watch recorded for cgroup id.
func (s *Shared) Meta(id uint64) (json.RawMessage, error) {
	r, err := s.readRecord(id)
	if err != nil {
		return nil, err
	}
	return r.Meta, nil
}

func (s *Shared) readRecord(id uint64) (record, error) {
	var r record
	err := s.records().Read(recordID(id), &r)
	return r, err
}

// alive says whether a record's cgroup still exists.
func (r record) alive() bool {
	id, err := CgroupID(r.Cgroup)
	return err == nil && id == r.ID
}

// Sweep unwatches the cgroups that ended without Unwatch (their
// supervisor was killed) and removes their records: what the reader
// runs now and then. It returns the IDs it removed.
func (s *Shared) Sweep() ([]uint64, error) {
	ids, err := s.Watched()
	var gone []uint64
	for _, id := range ids {
		if r, rerr := s.readRecord(id); rerr == nil && r.alive() {
			continue
		}
		if uerr := s.Unwatch(id); uerr != nil {
			err = errors.Join(err, uerr)
			continue
		}
		gone = append(gone, id)
	}
	names, _ := s.records().IDs()
	for _, name := range names {
		id, perr := strconv.ParseUint(name, 10, 64)
		if perr != nil {
			continue
		}
		if r, rerr := s.readRecord(id); rerr == nil && !r.alive() {
			s.records().Remove(name)
		}
	}
	return gone, err
}

// Close lets go of the sensor (the pins stay, for the other supervisors
// and the next one).
func (s *Shared) Close() error {
	return errors.Join(s.containers.Close(), s.users.Close())
}

// Reader is the one process of a node that drains the shared sensor's
// ring buffer.
type Reader struct {
	lock   *os.File
	events *ebpf.Map
	rd     *ringbuf.Reader
	// ready is a non-blocking duplicate of the ring buffer's descriptor
	// in Go's poller: Read waits on it without holding a thread.
	ready *os.File
	wait  syscall.RawConn
}

// Waiting for the reader's role costs no thread: a supervisor that is
// not the reader waits in Go's poller on a pidfd of the one that is
// (whose PID and start time the reader writes into the lock file), and
// tries the lock again when that process ends. The lock stays what
// decides: the pidfd only says when to try.
const (
	// leadRecheck bounds a wait on the reader's pidfd: a reader that let
	// go of the role without ending (Reader.Close, then a slow exit) is
	// noticed by then.
	leadRecheck = 30 * time.Second
	// leadPoll is how often a supervisor tries the lock when it cannot
	// tell who holds it: an older ward that does not write its PID, a
	// reader in this same process (tests), a reader that has not written
	// it yet.
	leadPoll = time.Second
)

// Lead blocks until this process is the sensor's reader or ctx is done.
// The role is the lock <digest>.reader, which the kernel releases when its
// holder dies; a surviving supervisor then takes over, and events in
// between wait in the ring buffer.
func (s *Shared) Lead(ctx context.Context) (_ *Reader, err error) {
	r := &Reader{}
	path := filepath.Join(s.state, s.digest+".reader")
	for {
		r.lock, err = lockFile(path, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		if err := waitHolder(ctx, path); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	// Best effort: a reader that cannot say who it is still reads; the
	// waiters then try the lock once a second.
	writeHolder(r.lock)
	if r.events, err = ebpf.LoadPinnedMap(filepath.Join(s.dir, "events"), nil); err != nil {
		return nil, fmt.Errorf("opening the pinned sensor's ring buffer: %w", err)
	}
	if r.rd, err = ringbuf.NewReader(r.events); err != nil {
		return nil, fmt.Errorf("opening the sensor's ring buffer: %w", err)
	}
	// A deadline in the past: the ring buffer reader never blocks (its
	// own wait would hold a thread for the life of the reader); Read
	// waits in Go's poller instead.
	r.rd.SetDeadline(time.Unix(1, 0))
	fd, err := unix.FcntlInt(uintptr(r.events.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("polling the sensor's ring buffer: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("polling the sensor's ring buffer: %w", err)
	}
	r.ready = os.NewFile(uintptr(fd), "sensor ring buffer")
	if r.wait, err = r.ready.SyscallConn(); err != nil {
		return nil, fmt.Errorf("polling the sensor's ring buffer: %w", err)
	}
	return r, nil
}

// holder is what the reader writes into its lock file: its PID and start
// time (/proc/<pid>/stat's 22nd field), so that a waiter's pidfd is known
// to be of the process that wrote it and not of a later one given the
// same PID.
func holder(pid int) (string, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(pid) + " " + strconv.FormatUint(st.StartTime, 10), nil
}

// writeHolder records this process in the reader's lock file.
func writeHolder(lock *os.File) error {
	h, err := holder(os.Getpid())
	if err == nil {
		if err = lock.Truncate(0); err == nil {
			_, err = lock.WriteAt([]byte(h+"\n"), 0)
		}
	}
	if err != nil {
		return fmt.Errorf("recording the sensor's reader in %s: %w", lock.Name(), err)
	}
	return nil
}

// waitHolder waits until the process that holds the reader's lock path
// has ended (or leadRecheck has passed), or leadPoll when it cannot tell
// which process that is; an error only when ctx is done.
func waitHolder(ctx context.Context, path string) error {
	if f, ok := holderPidfd(path); ok {
		defer f.Close()
		stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		f.SetReadDeadline(time.Now().Add(leadRecheck))
		if rc, err := f.SyscallConn(); err == nil {
			// A pidfd is readable once its process has ended.
			rc.Read(func(fd uintptr) bool {
				n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
				return n > 0
			})
			return ctx.Err()
		}
	}
	t := time.NewTimer(leadPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// holderPidfd is a pidfd, in Go's poller, of the process recorded in the
// reader's lock file, when that process is another one and still the one
// that wrote it.
func holderPidfd(path string) (*os.File, bool) {
	b, err := os.ReadFile(path)
	want := strings.TrimSpace(string(b))
	pidStr, _, _ := strings.Cut(want, " ")
	pid, perr := strconv.Atoi(pidStr)
	if err != nil || perr != nil || pid <= 0 || pid == os.Getpid() {
		return nil, false
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, false
	}
	// Read after the pidfd pins the PID: the same start time says it is
	// the process that wrote it.
	if got, err := holder(pid); err != nil || got != want {
		unix.Close(fd)
		return nil, false
	}
	return os.NewFile(uintptr(fd), "pidfd of the sensor's reader"), true
}

// Read blocks until the next event; ErrClosed after Close.
func (r *Reader) Read() (Event, error) {
	for {
		e, ok, err := nextEvent(r.rd)
		if ok || err != nil {
			return e, err
		}
		// Check again inside the poller's read: a wake-up between the
		// check above and the wait is kept, none is lost (the kernel
		// wakes a reader only once it has caught up).
		werr := r.wait.Read(func(uintptr) bool {
			e, ok, err = nextEvent(r.rd)
			return ok || err != nil
		})
		if ok || err != nil {
			return e, err
		}
		if werr != nil {
			return Event{}, ErrClosed
		}
	}
}

// Close stops reading and hands the role on.
func (r *Reader) Close() error {
	var errs []error
	if r.ready != nil {
		// Wakes a Read waiting in the poller.
		errs = append(errs, r.ready.Close())
	}
	if r.rd != nil {
		errs = append(errs, r.rd.Close())
	}
	if r.events != nil {
		errs = append(errs, r.events.Close())
	}
	if r.lock != nil {
		// The next reader writes its own; a waiter that reads nothing
		// polls meanwhile.
		r.lock.Truncate(0)
		errs = append(errs, r.lock.Close())
	}
	return errors.Join(errs...)
}

// ListPinned lists the program sets pinned under PinRoot.
func ListPinned() ([]Pinned, error) {
	insts, err := instances()
	var out []Pinned
	for _, dir := range insts {
		owner, _ := readOwner(dir)
		orphan := false
		if owner != "" {
			_, serr := os.Stat(owner)
			orphan = errors.Is(serr, fs.ErrNotExist)
		}
		progs, _ := os.ReadDir(dir)
		for _, p := range progs {
			if p.IsDir() {
				out = append(out, Pinned{Dir: filepath.Join(dir, p.Name()), StateDir: owner, Digest: p.Name(),
					Current: p.Name() == Digest(), Orphan: orphan})
			}
		}
	}
	return out, err
}

// instances lists the instance directories under PinRoot; none when
// there is no PinRoot.
func instances() ([]string, error) {
	ents, err := os.ReadDir(PinRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", PinRoot, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(PinRoot, e.Name()))
	}
	return out, nil
}

// RemovePinned unpins every sensor ward pinned (`ward uninstall`): the
// programs detach once no process holds them. It returns what it removed.
func RemovePinned() ([]string, error) {
	insts, err := instances()
	if err != nil || insts == nil {
		return nil, err
	}
	var out []string
	for _, dir := range insts {
		if err := os.RemoveAll(dir); err != nil {
			return out, fmt.Errorf("unpinning %s: %w", dir, err)
		}
		out = append(out, dir)
	}
	return out, os.Remove(PinRoot)
}

// RemoveInstance unpins a state directory's sensors (a test's cleanup).
func RemoveInstance(stateDir string) error {
	return os.RemoveAll(instanceDir(stateDir))
}
