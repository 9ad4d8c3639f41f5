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
// supervisor's own user may hand over.
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

// jobBuffers are the node's receive buffers: a fresh 64 KiB per hand-over
// was most of the node's time on the container's start path.
var jobBuffers = sync.Pool{New: func() any { return new([nodeMaxJob + 1]byte) }}

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

// nodeJob is one container handed over: the caller's global flags and
// WARD_ environment (the configuration it was admitted under), its ID,
// its socket (or "-") and what the helper used to learn on fd 3. The
// bound socket and the pidfd travel as descriptors, in that order.
type nodeJob struct {
	Args  []string   `json:"args"`
	Env   []string   `json:"env,omitempty"`
	ID    string     `json:"id"`
	Sock  string     `json:"sock"`
	Info  helperInfo `json:"info"`
	Pidfd bool       `json:"pidfd,omitempty"`
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

// wardEnviron is the part of the environment the configuration reads.
func wardEnviron(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "WARD_") {
			out = append(out, kv)
		}
	}
	return out
}

// handToNode gives a container to the node's supervisor, starting one when
// none runs, and returns once it has taken the container. files are the
// bound socket (or nil) and the pidfd (or nil).
func (c *ctx) handToNode(job nodeJob, files []*os.File) error {
	data, err := json.Marshal(job)
	if err != nil {
		return err
	}
	if len(data) > nodeMaxJob {
		return fmt.Errorf("hand-over of %d bytes, more than %d", len(data), nodeMaxJob)
	}
	var fds []int
	for _, f := range files {
		if f != nil {
			fds = append(fds, int(f.Fd()))
		}
	}
	p := pathsOf(c.nodeDir(), nodeKey())
	deadline := time.Now().Add(nodeHandTimeout)
	var last error
	for time.Now().Before(deadline) {
		fd, err := dialNode(p.sock)
		if err != nil {
			// No supervisor listens: start one, unless another call is
			// starting one or one is on its way out (it holds the lock).
			started, err := c.startNode(p)
			if err != nil {
				return err
			}
			if !started {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if fd, err = dialNode(p.sock); err != nil {
				return fmt.Errorf("connecting to the node's supervisor: %w", err)
			}
		}
		done, err := sendJob(fd, data, fds, deadline)
		unix.Close(fd)
		if done || err == nil {
			return err
		}
		// The supervisor closed before it read the job (it was leaving):
		// nothing was taken, try the next one.
		last = err
	}
	if last == nil {
		last = errors.New("no supervisor could be started")
	}
	return fmt.Errorf("handing over to the node's supervisor: %w", last)
}

// dialNode connects to the node's control socket.
func dialNode(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// sendJob sends one job and reads the answer: done is false when the
// supervisor went away before answering (the job was not taken).
func sendJob(fd int, data []byte, fds []int, deadline time.Time) (done bool, err error) {
	tv := unix.NsecToTimeval(time.Until(deadline).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Sendmsg(fd, data, unix.UnixRights(fds...), nil, 0); err != nil {
		return false, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		switch {
		case err == unix.ECONNRESET || err == nil && n == 0:
			return false, errors.New("the supervisor closed without an answer")
		case err == unix.EAGAIN:
			return true, errors.New("the node's supervisor did not answer in time")
		case err != nil:
			return true, err
		case string(buf[:n]) == "ok":
			return true, nil
		default:
			return true, fmt.Errorf("the node's supervisor refused: %s", buf[:n])
		}
	}
}

// startNode starts the node's supervisor when this call wins the lock:
// it binds the control socket (connections queue until the new process
// accepts them) and hands it and the lock over. false: the lock is held,
// by a supervisor or by another call starting one.
func (c *ctx) startNode(p nodePaths) (bool, error) {
	if c.env.Spawn == nil {
		return false, errors.New("no supervisor can be started here")
	}
	if err := os.MkdirAll(filepath.Dir(p.lock), 0o755); err != nil {
		return false, err
	}
	lock, err := os.OpenFile(p.lock, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return false, fmt.Errorf("opening the node supervisor's lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return false, nil
		}
		return false, fmt.Errorf("locking %s: %w", p.lock, err)
	}
	// Holding the lock: no supervisor runs, a socket left is a dead one's.
	os.Remove(p.sock)
	ln, err := bindControl(p.sock)
	if err != nil {
		return false, err
	}
	defer ln.Close()
	// No global flags: each job brings its caller's, and the node's own
	// messages go nowhere a caller's --log would send them.
	args := []string{nodeCommand}
	if err := c.env.Spawn(args, []*os.File{lock, ln}); err != nil {
		os.Remove(p.sock)
		return false, fmt.Errorf("starting the node's supervisor: %w", err)
	}
	return true, nil
}

// bindControl makes the control socket: mode 0600, in a directory whose
// other entries are bind-mounted into containers one file at a time.
func bindControl(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the node's control socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	old := unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("binding the node's control socket %s: %w", path, err)
	}
	return f, nil
}

// node is the node's supervisor process.
type node struct {
	paths nodePaths
	uid   int
	logf  func(format string, args ...any)
	sinks *sinkSet

	mu      sync.Mutex
	serving int // containers taken and not yet done with
	pending int // hand-overs being read
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
	ln := fl.(*net.UnixListener)
	ln.SetUnlinkOnClose(false)
	go n.accept(ln)
	n.idle <- struct{}{}
	for range n.idle {
		time.Sleep(nodeLinger)
		n.mu.Lock()
		if n.serving == 0 && n.pending == 0 {
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
	job, sockFile, pidfd, err := readJob(conn, n.uid)
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
		if err := c.serveContainer(job.ID, job.Sock, sockFile, pidfd, &job.Info, n.sinks); err != nil {
			n.logf("ward-runtime: %s: %v", nodeCommand, err)
		}
	}()
	return nil
}

// readJob reads one hand-over from a caller of user uid: the job, the
// container's bound socket (nil when the job has none) and the pidfd to
// reap after (nil when it asks for none).
func readJob(conn *net.UnixConn, uid int) (job nodeJob, sockFile, pidfd *os.File, err error) {
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
	b := jobBuffers.Get().(*[nodeMaxJob + 1]byte)
	defer jobBuffers.Put(b)
	buf, oob := b[:], make([]byte, unix.CmsgSpace(2*4))
	k, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	var files []*os.File
	for _, fd := range rights(oob[:oobn]) {
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

// rights are the descriptors in a control message.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}
