package wardruntime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/internal/supervisor"
	"github.com/ward-runtime/ward/internal/userns"
)

// nodeCommand is the hidden subcommand of the node's supervisor process.
// runc has no command of that name.
const nodeCommand = "ward-supervise-node"

// Why one supervisor process per node (docs/ward-runtime.md): each
// container's own helper was a Go process start per container, as much CPU
// as ward-runtime's own call (docs/benchmarks.md, session 7). Docker and
// Podman run no ward daemon, so the node's supervisor is started on first
// need by the ward-runtime call that finds none, elected by a file lock,
// and exits when it has served no container for nodeLinger.
//
// Attribution does not change: every container still has a socket of its
// own, bound by ward-runtime before admission and bind-mounted into that
// container alone, and its listeners are still attributed by runc's
// record of the container's first process and that process's mount
// namespace (supervised.resolve), never by anything a client says. What
// the node's control socket carries is ward-runtime's hand-over of a
// container it has just admitted (the bound socket, the container's
// record, a pidfd for the reaper); only a process of the node
// supervisor's own user may hand over. (Not "only its own executable":
// the hand-over to a supervisor just started is not waited for, and the
// caller has become runc by the time it is read.)
//
// If the node's supervisor dies, every notify descriptor it held is
// closed: the kernel then fails the calls those filters notify with
// ENOSYS (the escape calls stay refused, without alerts or responses),
// and the containers' sockets are gone with it, so their exec sessions
// find no listener and ward-init refuses to start them. The next
// ward-runtime call elects a new supervisor for new containers; the old
// containers' notify descriptors cannot be recovered (nothing else holds
// them). The per-container helper had the same failure, for one container.

// nodeLinger is how long the node's supervisor stays with no container:
// a container manager starts containers one after the other, and each
// new supervisor is a Go process start on the start path.
const nodeLinger = 10 * time.Second

// nodeHandTimeout bounds a hand-over, the election and a first start
// included: past it the container does not start.
const nodeHandTimeout = 5 * time.Second

// nodeMaxJob bounds a hand-over message (a few hundred bytes to a few
// KiB: the record, the detection policy, the global flags).
const nodeMaxJob = 64 << 10

// nodeKey names this build's node supervisor: a rebuilt or upgraded
// ward-runtime hands its containers to a supervisor of its own build and
// leaves the older one to its containers.
func nodeKey() string {
	var st syscall.Stat_t
	id := "unknown"
	if err := syscall.Stat("/proc/self/exe", &st); err == nil {
		id = fmt.Sprintf("%d/%d/%d/%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

// nodeDir is where the node's supervisor keeps its control socket, lock
// and container list.
func (c *ctx) nodeDir() string {
	if c.env.NodeDir != "" {
		return c.env.NodeDir
	}
	return supervisor.DefaultDir
}

// nodePaths are the node supervisor's control socket, its lock, the
// directory listing the containers it serves and its log.
type nodePaths struct{ sock, lock, dir, log string }

func pathsOf(dir, key string) nodePaths {
	base := filepath.Join(dir, "node-"+key)
	return nodePaths{sock: base + ".sock", lock: base + ".lock", dir: base + ".d", log: base + ".log"}
}

// nodeEntry is a served container's file in the node's directory, for
// operators (and tests): who serves which container, on which socket.
type nodeEntry struct {
	ID     string `json:"id"`
	Root   string `json:"root"`
	Socket string `json:"socket,omitempty"`
	PID    int    `json:"pid"`
}

// entryName is a container's file name in the node's directory: IDs are
// unique per state root only.
func entryName(root, id string) string {
	sum := sha256.Sum256([]byte(root + "\x00" + id))
	return hex.EncodeToString(sum[:8]) + ".json"
}

// node is the node's supervisor process.
type node struct {
	paths nodePaths
	uid   int
	logf  func(format string, args ...any)
	sinks *sinkSet
	// layers adopts what podman cp writes into its containers' layers
	// before the host reads them (watchLayer).
	layers *userns.LayerWatch

	mu      sync.Mutex
	serving int  // containers taken and not yet done with
	pending int  // hand-overs being read
	closing bool // the supervisor is leaving: no hand-over is read

	// buffers are the receive buffers: a fresh 256 KiB one per
	// hand-over was most of the node's time on the start path.
	buffers sync.Pool
	idle    chan struct{}
}

// runNode is `ward-supervise-node`, with its lock on fd 3 and its control
// socket, bound and listening, on fd 4. It serves until it has served no
// container for nodeLinger.
func runNode(c *ctx, cl cmdline) error {
	if len(cl.operands) != 0 {
		return fmt.Errorf("%s: takes no operands", nodeCommand)
	}
	lock := os.NewFile(3, "lock")
	defer lock.Close()
	n := &node{paths: pathsOf(c.nodeDir(), nodeKey()), uid: os.Geteuid(), idle: make(chan struct{}, 1)}
	// Its own log beside its socket: no caller's --log outlives the
	// call, and its stderr is /dev/null.
	c.log = newLogger(globals{log: n.paths.log, logFormat: "text"}, io.Discard)
	n.logf = func(format string, args ...any) { c.log.warn(fmt.Sprintf(format, args...)) }
	n.sinks = &sinkSet{logf: n.logf, by: map[string]*sinks{}}
	n.layers = userns.NewLayerWatch(n.logf)
	defer n.layers.Close()
	leaveCgroups(n.logf)
	// Holding the lock: what the list names is a dead supervisor's.
	os.RemoveAll(n.paths.dir)
	if err := os.MkdirAll(n.paths.dir, 0o700); err != nil {
		return err
	}
	fl, err := net.FileListener(os.NewFile(4, "control"))
	if err != nil {
		return fmt.Errorf("%s: %w", nodeCommand, err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return fmt.Errorf("%s: its control socket is not a unix socket", nodeCommand)
	}
	ln.SetUnlinkOnClose(false)
	go n.accept(ln)
	n.idle <- struct{}{}
	for range n.idle {
		time.Sleep(nodeLinger)
		n.mu.Lock()
		if n.serving == 0 && n.pending == 0 {
			n.closing = true
			// Unlinked before the lock goes with this process: the next
			// supervisor binds only once it holds the lock. A job queued
			// and not yet accepted is reset, and its caller retries.
			os.Remove(n.paths.sock)
			ln.Close()
			os.RemoveAll(n.paths.dir)
			n.mu.Unlock()
			n.sinks.close()
			return nil
		}
		n.mu.Unlock()
	}
	return nil
}

func (n *node) accept(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n.mu.Lock()
		if n.closing {
			// Accepted as the supervisor decided to leave: closed
			// unread and unanswered, so the caller tries the next one.
			n.mu.Unlock()
			conn.Close()
			continue
		}
		n.pending++
		n.mu.Unlock()
		go func() {
			defer conn.Close()
			err := n.take(conn)
			answer := "ok"
			if err != nil {
				answer = err.Error()
				n.logf("ward-runtime: %s: %v", nodeCommand, err)
			}
			conn.Write([]byte(answer))
			n.mu.Lock()
			n.pending--
			n.mu.Unlock()
		}()
	}
}

// take reads one job and starts serving its container. The caller is
// answered as soon as the job is read and the container counted: what
// follows (the caller's configuration, the container's socket served) is
// off the container's start path, and if it fails the container's
// ward-init finds no supervisor and refuses to start (logged here).
func (n *node) take(conn *net.UnixConn) error {
	b, _ := n.buffers.Get().(*[nodeMaxJob + 1]byte)
	if b == nil {
		b = new([nodeMaxJob + 1]byte)
	}
	job, sockFile, pidfd, err := readJob(conn, n.uid, b[:])
	n.buffers.Put(b)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.serving++
	n.mu.Unlock()
	go func() {
		defer n.done()
		c, err := nodeCtx(job)
		if err != nil {
			closeFiles(sockFile, pidfd)
			n.logf("ward-runtime: %s: container %s: %v", nodeCommand, job.ID, err)
			return
		}
		entry := filepath.Join(n.paths.dir, entryName(c.root(), job.ID))
		data, _ := json.Marshal(nodeEntry{ID: job.ID, Root: c.root(), Socket: strings.TrimPrefix(job.Sock, "-"), PID: os.Getpid()})
		atomicfile.Write(entry, data, 0o600, false)
		defer os.Remove(entry)
		if job.Info.WatchLayer {
			defer c.watchLayer(job.ID, n.layers)()
		}
		if err := c.serveContainer(job.ID, job.Sock, sockFile, pidfd, &job.Info, n.sinks); err != nil {
			n.logf("ward-runtime: %s: %v", nodeCommand, err)
		}
	}()
	return nil
}

// readJob reads one hand-over from a caller of user uid into buf (of
// nodeMaxJob+1 bytes): the job, the container's bound socket (nil when
// the job has none) and the pidfd to reap after (nil when it asks for
// none).
func readJob(conn *net.UnixConn, uid int, buf []byte) (job nodeJob, sockFile, pidfd *os.File, err error) {
	conn.SetDeadline(time.Now().Add(nodeHandTimeout))
	raw, err := conn.SyscallConn()
	if err != nil {
		return job, nil, nil, err
	}
	var cred *unix.Ucred
	credErr := errors.New("no peer")
	raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if credErr != nil {
		return job, nil, nil, fmt.Errorf("reading the caller of a hand-over: %w", credErr)
	}
	oob := make([]byte, unix.CmsgSpace(2*4))
	k, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	var files []*os.File
	for _, fd := range supervisor.Rights(oob[:oobn]) {
		files = append(files, os.NewFile(uintptr(fd), "handed"))
	}
	fail := func(err error) (nodeJob, *os.File, *os.File, error) {
		closeFiles(files...)
		return job, nil, nil, err
	}
	switch {
	case err != nil:
		return fail(fmt.Errorf("reading a hand-over: %w", err))
	case int(cred.Uid) != uid:
		return fail(fmt.Errorf("refused a hand-over from pid %d of uid %d", cred.Pid, cred.Uid))
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || k > nodeMaxJob:
		return fail(errors.New("refused a hand-over: message too long"))
	}
	if err := json.Unmarshal(buf[:k], &job); err != nil {
		return fail(fmt.Errorf("reading a hand-over: %w", err))
	}
	want := 0
	if job.Sock != "-" {
		want++
	}
	if job.Pidfd {
		want++
	}
	if len(files) != want || checkID(job.ID) != nil {
		return fail(fmt.Errorf("refused a malformed hand-over (container %q, %d descriptors)", job.ID, len(files)))
	}
	if job.Sock != "-" {
		sockFile, files = files[0], files[1:]
	}
	if job.Pidfd {
		pidfd = files[0]
	}
	return job, sockFile, pidfd, nil
}

func closeFiles(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// done counts a container off; the last one starts the linger.
func (n *node) done() {
	n.mu.Lock()
	n.serving--
	last := n.serving == 0
	n.mu.Unlock()
	if last {
		select {
		case n.idle <- struct{}{}:
		default:
		}
	}
}

// nodeCtx is the invocation a job was admitted in: the caller's global
// flags and configuration, its log for warnings.
func nodeCtx(job nodeJob) (*ctx, error) {
	g, rest, err := parseGlobals(job.Args)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", rest)
	}
	env := map[string]string{}
	for _, kv := range job.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "WARD_") {
			env[k] = v
		}
	}
	e := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Environ: job.Env,
		Getenv: func(k string) string { return env[k] }}
	cfg, err := loadConfig(g, e.Getenv)
	if err != nil {
		return nil, err
	}
	return &ctx{env: e, g: g, globalArgs: job.Args, cfg: cfg, log: newLogger(g, io.Discard)}, nil
}

// leaveCgroups moves the node's supervisor to the root cgroup of every
// hierarchy: it serves every container of the node, so the cgroup of the
// call that happened to start it (a user's session, a container manager's
// unit) must not take it down when that one is stopped.
func leaveCgroups(logf func(string, ...any)) {
	pid := []byte(fmt.Sprint(os.Getpid()))
	tops, _ := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.procs"); err == nil {
		tops = append(tops, "/sys/fs/cgroup/cgroup.procs")
	}
	for _, p := range tops {
		if err := os.WriteFile(p, pid, 0); err != nil {
			logf("ward-runtime: %s: leaving the caller's cgroup (%s): %v", nodeCommand, filepath.Dir(p), err)
		}
	}
}
