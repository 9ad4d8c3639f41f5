package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/policy"
)

// DefaultDir is where the front doors keep supervisor sockets: beside the
// compiled filters on /run, reachable by runc as a bind-mount source for
// containers of every user namespace.
const DefaultDir = "/run/ward-supervisor"

// Container is a container a listener came from: what its alerts say
// about it, the policy that answers it and what a response needs.
type Container struct {
	alert.Container
	Decision alert.Decision
	// Detection is the detection section of the policy that admitted it.
	Detection func() policy.Detection `json:"-"`
	// StrictDrift: the workload asked (policy.AnnotationDrift) that a
	// build artefact executed raise drift like any dropped binary.
	StrictDrift bool `json:",omitempty"`
	// Bundle, PID (its first process) and CgroupsPath (the spec's
	// linux.cgroupsPath) find it for freeze, kill and the incident bundle.
	Bundle      string
	PID         int
	CgroupsPath string
	// Profile is the host path of the container's own seccomp profile as
	// ward compiled it, composed with the baseline (the hardened spec's
	// mount at landlock.ProfileSeccompPath); "" when runc installs it or
	// there is none. The supervisor answers as that profile does where
	// it refuses a notified call (verdict_linux.go).
	Profile string `json:",omitempty"`
}

// Options configure a Supervisor.
type Options struct {
	// Socket is the path to listen on (created mode 0666: a container's
	// processes, of any user, connect to it).
	Socket string
	// Bound, when set, is Socket already bound and listening (Bind),
	// handed over by the process that made it; Listen serves it and
	// removes Socket when it closes.
	Bound *os.File
	// Resolve attributes a connecting process (its pid as the kernel
	// gives it, in the supervisor's pid namespace) to a container; an
	// error refuses the listener and ward-init does not start the
	// workload.
	Resolve func(pid int) (Container, error)
	// Alerts raises the alerts.
	Alerts *alert.Dispatcher
	// Respond, when set, acts on a container for the freeze and kill
	// responses: for kill before the call is answered (it must hold the
	// container, frozen, before it returns), for freeze after; without it
	// they are denies.
	Respond func(c Container, e alert.Event, r policy.Response)
	// Logf reports what the supervisor could not do (a stale
	// notification, a sink that failed).
	Logf func(format string, args ...any)
	// MaxHandshakes, MaxConns and HandshakeTimeout bound the connections
	// still handing over a listener (bound_linux.go); zero means
	// DefaultMaxHandshakes, DefaultMaxConns, DefaultHandshakeTimeout.
	MaxHandshakes    int
	MaxConns         int
	HandshakeTimeout time.Duration
}

// Supervisor accepts listeners on its socket and answers their
// notifications.
type Supervisor struct {
	o     Options
	ln    *net.UnixListener
	names map[uint32]string
	rules map[string]alert.Rule
	own   *ownPrograms

	pending *handshakes
	refused *quietLog

	mu     sync.Mutex
	closed bool
	// listeners are the listeners being watched, closed by Close to
	// end their watchers.
	listeners map[int]*os.File
	// conns are the connections still in their handshake, closed by
	// Close rather than waited for.
	conns map[*net.UnixConn]struct{}
	wg    sync.WaitGroup
}

// Listen creates the socket and starts accepting.
func Listen(o Options) (*Supervisor, error) {
	if o.Resolve == nil || o.Alerts == nil {
		return nil, errors.New("supervisor: Resolve and Alerts are required")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	native, err := seccompbpf.Native()
	if err != nil {
		return nil, err
	}
	names := make(map[uint32]string)
	for _, n := range alert.NotifySyscalls() {
		if nr, ok := native.Lookup(n); ok {
			names[nr] = n
		}
	}
	bound := o.Bound
	if bound == nil {
		if bound, err = Bind(o.Socket); err != nil {
			return nil, err
		}
	}
	fl, err := net.FileListener(bound)
	bound.Close()
	if err != nil {
		os.Remove(o.Socket)
		return nil, fmt.Errorf("listening for seccomp listeners: %w", err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, fmt.Errorf("listening for seccomp listeners: %s is not a unix socket", o.Socket)
	}
	ln.SetUnlinkOnClose(true)
	s := &Supervisor{o: o, ln: ln, names: names, rules: alert.SyscallRules(), own: newOwnPrograms(), listeners: make(map[int]*os.File),
		conns: make(map[*net.UnixConn]struct{}), pending: newHandshakes(o.MaxHandshakes, o.MaxConns), refused: newQuietLog(o.Logf, refusalQuiet)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Bind creates the supervisor socket at path, mode 0666 (a container's
// processes, of any user, connect to it), listening: connections queue in
// the kernel until a Supervisor accepts them. A front door that starts its
// supervisor in another process binds here and hands the descriptor over
// (Options.Bound), so that nothing waits for that process to start. The
// caller removes path if it gives up before a Supervisor serves it.
func Bind(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating supervisor socket directory: %w", err)
	}
	os.Remove(path)
	f, err := Listening(path, unix.SOCK_STREAM, 0o666)
	if err != nil {
		return nil, fmt.Errorf("supervisor socket: %w", err)
	}
	return f, nil
}

// Listening binds a unix socket of type typ at path and listens on it,
// its mode set between the two: connect(2) to a socket that does not
// listen yet is refused, so no one connects before the mode allows, and
// the process's umask is left alone (other goroutines create files).
func Listening(path string, typ int, mode os.FileMode) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		f.Close()
		return nil, fmt.Errorf("binding %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	return f, nil
}

// Socket is the socket's path.
func (s *Supervisor) Socket() string { return s.o.Socket }

// Close stops accepting and stops watching every listener. Calls the
// listeners would have notified then fail with ENOSYS.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	for _, f := range s.listeners {
		f.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Supervisor) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.o.Logf("supervisor: accepting: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.pending.enter() {
			// Closed before anything is read: a flood costs the
			// supervisor no goroutine and no time.
			c.Close()
			s.refused.printf("total", "supervisor: refused a connection: %d hand-offs are unfinished, the most it takes", s.pending.total)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.pending.leave()
			s.serve(c)
		}()
	}
}

// serve counts a connection against its peer, then takes its listener.
func (s *Supervisor) serve(c *net.UnixConn) {
	defer c.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.SetDeadline(time.Now().Add(s.o.HandshakeTimeout))
	cred, err := peer(c)
	if err != nil {
		s.refused.printf("peer", "supervisor: %v", err)
		return
	}
	ns, err := mountNS(int(cred.Pid))
	if err != nil {
		return // the peer is gone already
	}
	key := fmt.Sprintf("%d:%d", ns[0], ns[1])
	if !s.pending.enterPeer(ns) {
		s.refused.printf("flood:"+key, "supervisor: refused a connection from pid %d: its container (mount namespace mnt:[%d]) has %d hand-offs unfinished, the most it may",
			cred.Pid, ns[1], s.pending.perPeer)
		return
	}
	defer s.pending.leavePeer(ns)
	if err := s.handshake(c, cred); err != nil {
		s.refused.printf("handshake:"+key, "supervisor: %v", err)
	}
}

// peer is the connecting process as the kernel recorded it at connect(2).
func peer(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("reading the peer of a listener: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, fmt.Errorf("reading the peer of a listener: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("reading the peer of a listener: %w", credErr)
	}
	return cred, nil
}

// handshake receives one listener from cred's process, attributes it
// and acknowledges it (serve set the deadline and closes c).
func (s *Supervisor) handshake(c *net.UnixConn, cred *unix.Ucred) error {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return fmt.Errorf("receiving a listener from pid %d: %w", cred.Pid, err)
	}
	fds := Rights(oob[:oobn])
	if n != 1 || buf[0] != landlock.HelloByte || len(fds) != 1 {
		closeAll(fds)
		return fmt.Errorf("pid %d sent no listener", cred.Pid)
	}
	fd := fds[0]
	if err := isListener(fd); err != nil {
		unix.Close(fd)
		return fmt.Errorf("pid %d: %w", cred.Pid, err)
	}
	ctr, err := s.o.Resolve(int(cred.Pid))
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("listener from pid %d: %w", cred.Pid, err)
	}
	// Non-blocking, so that its watcher waits in the runtime's poller
	// rather than holding a thread (watch).
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("listener of %s: %w", ctr.ID, err)
	}
	f := os.NewFile(uintptr(fd), "seccomp listener")
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Close()
		return errors.New("closing")
	}
	s.listeners[fd] = f
	s.wg.Add(1)
	s.mu.Unlock()
	go s.watch(f, ctr)
	if _, err := c.Write([]byte{landlock.AckByte}); err != nil {
		return fmt.Errorf("acknowledging the listener of %s: %w", ctr.ID, err)
	}
	return nil
}

// Rights are the descriptors passed in a unix socket's control message
// (SCM_RIGHTS).
func Rights(oob []byte) []int {
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

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// watch answers the listener's notifications until every process of its
// filter is gone (POLLHUP) or the supervisor closes. It waits in the
// runtime's poller (the listener is non-blocking), not in a poll(2) of its
// own: a thread and a wake-up every half second per listener, for the
// life of every container, were most of an idle shim's extra threads.
func (s *Supervisor) watch(f *os.File, c Container) {
	defer s.wg.Done()
	fd := int(f.Fd())
	defer func() {
		s.mu.Lock()
		delete(s.listeners, fd)
		s.mu.Unlock()
		f.Close()
	}()
	raw, err := f.SyscallConn()
	if err != nil {
		s.o.Logf("supervisor: watching the listener of %s: %v", c.ID, err)
		return
	}
	var n notif
	for {
		var hup bool
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			k, err := unix.Poll(pfd, 0)
			switch {
			case err == unix.EINTR || err == nil && k == 0:
				return false // nothing yet: wait for the poller
			case err != nil:
				rerr = err
			case pfd[0].Revents&unix.POLLIN == 0:
				hup = true // no process uses the filter any more
			default:
				rerr = recv(int(fd), &n)
			}
			return true
		})
		switch {
		case err != nil:
			return // closed by Close
		case hup:
			return
		case rerr == unix.ENOENT:
			continue // the process went away before we read it
		case rerr != nil:
			s.o.Logf("supervisor: receiving from the listener of %s: %v", c.ID, rerr)
			return
		}
		s.answer(fd, &n, c)
	}
}

// answer decides one notification: it reads what the alert needs while
// the process is blocked, answers, raises the alert, then acts.
func (s *Supervisor) answer(fd int, n *notif, c Container) {
	name, ok := s.names[uint32(n.Data.Nr)]
	rule := s.rules[name]
	resp := policy.RespondDeny
	if ok && c.Detection != nil {
		if det := c.Detection(); bool(det.Enabled) {
			resp = det.Response(rule.ID)
		}
	}
	if !ok {
		// A number the filter should not have sent: refuse, as the
		// baseline would have.
		name = "syscall#" + strconv.Itoa(int(n.Data.Nr))
		rule = alert.Rule{ID: "unknown", Name: "Unexpected seccomp notification", Priority: alert.PriorityWarning, Tags: []string{"container"}, Summary: "Unexpected system call notified"}
	}
	ev := alert.Event{Time: time.Now(), Rule: rule, Container: c.Container, Decision: c.Decision, Syscall: name}
	r := newReader(fd, n.ID, n.PID)
	proc, err := r.process(n.PID)
	ev.Process = proc
	if err == nil {
		ev.Path, ev.Args, err = s.readArgs(r, name, n)
	}
	if errors.Is(err, errStale) {
		// The process is gone or was interrupted: nothing to answer,
		// and what was read may be another process's.
		return
	}
	// The container's own profile, where it refuses the call, answers
	// before ward's rule does (an alert is raised either way).
	out, did, verr := s.verdict(c, n, resp)
	ev.Response = did
	if verr != nil {
		s.o.Logf("supervisor: answering %s in %s: %v", name, c.ID, verr)
	}
	// A kill holds the container (frozen) before the answer, a freeze
	// follows it (Responder.Respond says why). The answer to a call the
	// hold interrupted finds no notification (ENOENT).
	if resp == policy.RespondKill && s.o.Respond != nil {
		s.o.Respond(c, ev, resp)
	}
	if err := send(fd, &out); err != nil && err != unix.ENOENT {
		s.o.Logf("supervisor: answering %s in %s: %v", name, c.ID, err)
	}
	if _, err := s.o.Alerts.Emit(ev); err != nil {
		s.o.Logf("supervisor: alert for %s in %s: %v", name, c.ID, err)
	}
	if resp == policy.RespondFreeze && s.o.Respond != nil {
		s.o.Respond(c, ev, resp)
	}
}

func (s *Supervisor) readArgs(r *reader, name string, n *notif) (string, map[string]string, error) {
	var target string
	args := map[string]string{}
	for _, a := range callArgs(name) {
		v := n.Data.Args[a.index]
		if !a.path {
			args[a.field] = "0x" + strconv.FormatUint(v, 16)
			continue
		}
		p, err := r.path(v)
		if errors.Is(err, errStale) {
			return "", nil, err
		}
		if err != nil {
			args[a.field] = "<unreadable>"
			continue
		}
		args[a.field] = p
		if a.target {
			target = p
		}
	}
	if len(args) == 0 {
		args = nil
	}
	return target, args, nil
}
