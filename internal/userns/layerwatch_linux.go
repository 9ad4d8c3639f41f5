package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LayerWatch gives host root's writes through ward's overlay (podman cp
// into a running container) to the container's root before a process
// outside the container reads the writable layer: `podman commit`,
// `podman diff` and `podman export` of a running container read the
// layer with no call to the runtime in between (Podman 4.3 runs none), so
// ward-runtime's exec, which adopts them too (AdoptHostRootWrites), is
// not enough.
//
// Anyone who reads the layer opens its top directory: the managers' diff
// walks it, and an overlay over it opens it to list its root. A fanotify
// permission mark on that one directory (FAN_OPEN_PERM|FAN_ONDIR, an
// inode mark: it holds whatever mount the directory is opened through)
// makes each such open wait for the watch's answer. The answer is always
// "allow": the watch only decides whether to adopt first, which it does
// when the opener is a process of the host's user namespace other than
// ward's own (ward-runtime adopts itself; the container's own processes,
// listing their /, never wait for a walk). Opens of files below the top,
// lookups and writes are not marked: the container's ordinary writes cost
// nothing, a listing of its / one round trip to the watch per open.
//
// One fanotify group serves every layer (the kernel allows 128 groups per
// user by default), one goroutine reads it, and a walk runs on a goroutine
// of its own. If the watch's process dies, the kernel allows the pending
// opens and drops the marks: copies stay stored as the ID past the block
// until the next exec, delete or create, as before.
type LayerWatch struct {
	logf func(format string, args ...any)

	mu     sync.Mutex
	f      *os.File // nil until the first Add
	fd     int      // f's descriptor, for marks (f.Fd would make f blocking)
	layers map[fileKey]*watchedLayer
	exe    fileKey // this process's executable: ward-runtime
	userNS string  // this process's user namespace: the host's
}

// fileKey names an inode.
type fileKey struct{ dev, ino uint64 }

// watchedLayer is one container's writable layer.
type watchedLayer struct {
	rf *Rootfs
	r  Range

	mu     sync.Mutex // one walk at a time
	walked time.Time  // when the last walk started
}

// NewLayerWatch returns a watch with no layer; logf says what it could not
// do.
func NewLayerWatch(logf func(format string, args ...any)) *LayerWatch {
	return &LayerWatch{logf: logf, layers: map[fileKey]*watchedLayer{}}
}

// Add watches rf's writable layer (a rootfs with an idmapped layer, else
// nothing to do) for the block r. The returned function stops watching
// it.
func (w *LayerWatch) Add(rf *Rootfs, r Range) (func(), error) {
	if rf == nil || rf.Layer == "" {
		return func() {}, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(rf.Layer, &st); err != nil {
		return nil, fmt.Errorf("watching the writable layer: %w", err)
	}
	key := fileKey{st.Dev, st.Ino}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		if err := w.open(); err != nil {
			return nil, err
		}
	}
	if err := unix.FanotifyMark(w.fd, unix.FAN_MARK_ADD, unix.FAN_OPEN_PERM|unix.FAN_ONDIR, unix.AT_FDCWD, rf.Layer); err != nil {
		return nil, fmt.Errorf("watching the writable layer %s: %w", rf.Layer, err)
	}
	l := &watchedLayer{rf: rf, r: r}
	w.layers[key] = l
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		// The next container on the layer (podman restart) may have
		// added it again before this one's supervision ended: the layer,
		// and its mark, are that one's now.
		if w.layers[key] != l || w.f == nil {
			return
		}
		delete(w.layers, key)
		// The layer may be gone already (its mark with it).
		unix.FanotifyMark(w.fd, unix.FAN_MARK_REMOVE, unix.FAN_OPEN_PERM|unix.FAN_ONDIR, unix.AT_FDCWD, rf.Layer)
	}, nil
}

// open makes the fanotify group and starts reading it; w.mu is held.
func (w *LayerWatch) open() error {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return fmt.Errorf("watching writable layers: %w", err)
	}
	w.exe = fileKey{st.Dev, st.Ino}
	ns, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return fmt.Errorf("watching writable layers: %w", err)
	}
	w.userNS = ns
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("watching writable layers: fanotify: %w", err)
	}
	// Non-blocking, so that Go's poller waits for events and Close ends
	// the reader.
	w.f, w.fd = os.NewFile(uintptr(fd), "fanotify"), fd
	go w.read(w.f)
	return nil
}

// Close stops every watch; the kernel allows the opens still waiting.
func (w *LayerWatch) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	clear(w.layers)
	return err
}

// read answers the group's events until it is closed.
func (w *LayerWatch) read(f *os.File) {
	buf := make([]byte, 16<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.logf("ward: watching writable layers: %v", err)
			}
			return
		}
		for off := 0; off+metaSize <= n; {
			m := *(*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[off]))
			if int(m.Event_len) < metaSize {
				break
			}
			off += int(m.Event_len)
			if m.Fd < 0 {
				continue // an overflow; permission events are never dropped
			}
			if l := w.toAdopt(m); l != nil {
				// Its walk must not hold up the other layers' opens, nor
				// ward's own opens of this layer during the walk.
				asked := time.Now()
				go func() {
					l.adopt(asked, w.logf)
					w.allow(f, m.Fd)
				}()
				continue
			}
			w.allow(f, m.Fd)
		}
	}
}

// toAdopt is the layer an event asks to adopt first, nil when the open
// can go at once.
func (w *LayerWatch) toAdopt(m unix.FanotifyEventMetadata) *watchedLayer {
	if int(m.Pid) == os.Getpid() {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(m.Fd), &st); err != nil {
		return nil
	}
	w.mu.Lock()
	l := w.layers[fileKey{st.Dev, st.Ino}]
	w.mu.Unlock()
	if l == nil {
		return nil
	}
	proc := "/proc/" + strconv.Itoa(int(m.Pid))
	// The opener is blocked in open: its /proc entry is there unless it
	// was killed meanwhile (then nothing reads the layer).
	if ns, err := os.Readlink(proc + "/ns/user"); err != nil || ns != w.userNS {
		return nil
	}
	if err := unix.Stat(proc+"/exe", &st); err == nil && (fileKey{st.Dev, st.Ino}) == w.exe {
		return nil // ward-runtime: it adopts itself (exec)
	}
	return l
}

// allow answers a permission event and closes its descriptor.
func (w *LayerWatch) allow(f *os.File, fd int32) {
	resp := unix.FanotifyResponse{Fd: fd, Response: unix.FAN_ALLOW}
	if _, err := f.Write((*[unsafe.Sizeof(resp)]byte)(unsafe.Pointer(&resp))[:]); err != nil && !errors.Is(err, os.ErrClosed) {
		w.logf("ward: answering an open of a writable layer: %v", err)
	}
	unix.Close(int(fd))
}

// adopt walks the layer unless a walk started after the open asked
// (at asked) did: that one saw what the opener wrote before it.
func (l *watchedLayer) adopt(asked time.Time, logf func(string, ...any)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.walked.After(asked) {
		return
	}
	l.walked = time.Now()
	// After the container's delete (which adopted last) ward's overlay
	// is gone while the manager removes the layer: nothing to do.
	if _, err := l.rf.AdoptHostRootWrites(l.r); err != nil && !errors.Is(err, fs.ErrNotExist) {
		logf("ward: giving host root's writes in %s to the container's root: %v", l.rf.Layer, err)
	}
}

// metaSize is the size of a fanotify event's metadata.
const metaSize = int(unsafe.Sizeof(unix.FanotifyEventMetadata{}))
