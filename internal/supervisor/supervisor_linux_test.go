package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/profiles"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
	"github.com/ward-runtime/ward/policy"
)

// childEnv makes the test binary a workload under ward's baseline: it
// installs the notify filter, hands the listener to the socket the
// variable names, then runs the commands it reads on stdin.
const childEnv = "WARD_SUPERVISOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if sock := os.Getenv(childEnv); sock != "" {
		os.Exit(child(sock))
	}
	if kind := os.Getenv(benchEnv); kind != "" {
		os.Exit(benchChild(kind))
	}
	os.Exit(m.Run())
}

// baseline compiles ward's baseline for the default capability set, with
// notifications (notify) or without.
func baseline(notify bool) (prog.Program, error) {
	p, err := policy.Default()
	if err != nil {
		return prog.Program{}, err
	}
	gen, err := profiles.NewSeccompGenerator(p.Harden.Capabilities)
	if err != nil {
		return prog.Program{}, err
	}
	prof, err := gen.Profile(p.Harden.Capabilities)
	if err != nil {
		return prog.Program{}, err
	}
	native, err := seccompbpf.Native()
	if err != nil {
		return prog.Program{}, err
	}
	if notify {
		return seccompbpf.CompileNotify(prof, native, alert.NotifySyscalls())
	}
	return seccompbpf.Compile(prof, native)
}

func child(sock string) int {
	filter, err := baseline(true)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	conn, err := landlock.DialSupervisor(sock)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	lfd, err := prog.Install(filter, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := landlock.HandListener(conn, lfd); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var err error
		switch in.Text() {
		case "mount":
			err = unix.Mount("none", "/nonexistent-ward-test", "tmpfs", 0, "")
		case "umount":
			err = unix.Unmount("/nonexistent-ward-test", 0)
		case "unshare-user":
			err = unix.Unshare(unix.CLONE_NEWUSER)
		case "listener":
			// A second listener in the same filter chain: the kernel
			// refuses it, so no workload can answer ward's calls.
			_, err = prog.Install(filter, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
			err = unwrapErrno(err)
		case "getpid":
			unix.Getpid()
		}
		fmt.Println(errName(err))
	}
	return 0
}

func unwrapErrno(err error) error {
	var e unix.Errno
	if err != nil && asErrno(err, &e) {
		return e
	}
	return err
}

func asErrno(err error, e *unix.Errno) bool {
	for err != nil {
		if x, ok := err.(unix.Errno); ok {
			*e = x
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

type memSink struct {
	mu    sync.Mutex
	lines [][]byte
}

func (m *memSink) Write(l []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = append(m.lines, append([]byte(nil), l...))
	return nil
}
func (m *memSink) Close() error { return nil }

// wait waits until n alerts were raised: an alert is raised after the
// call is answered.
func (m *memSink) wait(t *testing.T, n int) []alert.Alert {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if a := m.alerts(t); len(a) >= n {
			return a
		}
	}
	return m.alerts(t)
}

func (m *memSink) alerts(t *testing.T) []alert.Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []alert.Alert
	for _, l := range m.lines {
		a, err := alert.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

type workload struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func (w *workload) do(t *testing.T, what string) string {
	t.Helper()
	fmt.Fprintln(w.in, what)
	if !w.out.Scan() {
		t.Fatalf("%s: workload ended", what)
	}
	return w.out.Text()
}

func start(t *testing.T, sock string) *workload {
	t.Helper()
	return startIn(t, sock, false)
}

// startIn starts a workload, in a mount namespace of its own when
// ownMountNS (as a container's processes are: the supervisor tells
// containers apart by mount namespace).
func startIn(t *testing.T, sock string, ownMountNS bool) *workload {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+sock)
	if ownMountNS {
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	w := &workload{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !w.out.Scan() || w.out.Text() != "ready" {
		t.Fatalf("workload did not start: %q", w.out.Text())
	}
	return w
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installs seccomp filters with listeners and reads /proc/<pid>/mem: run as root")
	}
}

func TestSupervisorAnswersAndAlerts(t *testing.T) {
	needRoot(t)
	sink := &memSink{}
	d := alert.NewDispatcher([]alert.Sink{sink}, alert.Limits{Dedup: time.Nanosecond, Burst: 1000, Window: time.Second})
	var mu sync.Mutex
	det := policy.Detection{Enabled: true, Mode: policy.DetectEnforce}
	ctr := Container{Container: alert.Container{ID: "c0ffee", Name: "probe", PodName: "pod-a", PodNamespace: "ns-a"},
		Decision:  alert.Decision{ID: "dec-1", Action: "harden", Backend: "runc", Door: "shim"},
		Detection: func() policy.Detection { mu.Lock(); defer mu.Unlock(); return det }}
	sock := filepath.Join(t.TempDir(), "sup.sock")
	s, err := Listen(Options{Socket: sock, Alerts: d,
		Resolve: func(int) (Container, error) { return ctr, nil },
		Logf:    t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, sock)

	// Enforce: exactly the baseline's answer, and an alert.
	if got := w.do(t, "mount"); got != "EPERM" {
		t.Errorf("mount under enforce: %s, want EPERM", got)
	}
	if got := w.do(t, "unshare-user"); got != "EPERM" {
		t.Errorf("unshare(CLONE_NEWUSER) under enforce: %s, want EPERM", got)
	}
	if got := w.do(t, "getpid"); got != "ok" {
		t.Errorf("getpid: %s", got)
	}
	// The kernel allows one listener per filter chain.
	if got := w.do(t, "listener"); got != "EBUSY" {
		t.Errorf("a second listener: %s, want EBUSY", got)
	}
	as := sink.wait(t, 2)
	if len(as) != 2 {
		t.Fatalf("%d alerts, want 2: %+v", len(as), as)
	}
	m := as[0]
	f := m.OutputFields
	if m.Rule != "Mount Launched in Privileged Container" || f["ward.rule"] != "mount" || f["evt.type"] != "mount" ||
		f["fd.name"] != "/nonexistent-ward-test" || f["evt.arg.type"] != "tmpfs" || f["k8s.pod.name"] != "pod-a" ||
		f["ward.decision.id"] != "dec-1" || f["ward.response"] != "deny" || int(f["proc.pid"].(float64)) != w.cmd.Process.Pid ||
		!strings.HasSuffix(f["proc.exepath"].(string), ".test") || !containsTag(m.Tags, "T1611") {
		t.Errorf("mount alert: %s %+v", m.Rule, f)
	}
	if as[1].OutputFields["ward.rule"] != "userns" || as[1].OutputFields["evt.arg.flags"] != "0x10000000" {
		t.Errorf("unshare alert: %+v", as[1].OutputFields)
	}

	// Audit: the call runs (umount of a missing path: ENOENT, not EPERM).
	mu.Lock()
	det.Mode = policy.DetectAudit
	mu.Unlock()
	if got := w.do(t, "umount"); got != "ENOENT" {
		t.Errorf("umount under audit: %s, want ENOENT (the call ran)", got)
	}
	if a := sink.wait(t, 3); len(a) != 3 || a[2].OutputFields["ward.response"] != "allow" {
		t.Errorf("audit alert: %+v", a[len(a)-1].OutputFields)
	}

	// The supervisor gone: the kernel refuses notified calls (ENOSYS),
	// it never runs them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.do(t, "umount"); got != "ENOSYS" {
		t.Errorf("umount with no supervisor: %s, want ENOSYS", got)
	}
	if got := w.do(t, "getpid"); got != "ok" {
		t.Errorf("getpid with no supervisor: %s", got)
	}
}

func containsTag(tags []string, t string) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}

// TestNoSupervisorNoStart: a workload whose supervisor refuses its
// listener does not get an acknowledgement.
func TestRefusedListener(t *testing.T) {
	needRoot(t)
	sock := filepath.Join(t.TempDir(), "sup.sock")
	d := alert.NewDispatcher(nil, alert.Limits{})
	s, err := Listen(Options{Socket: sock, Alerts: d,
		Resolve: func(pid int) (Container, error) { return Container{}, fmt.Errorf("pid %d unknown", pid) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+sock)
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "refused the seccomp listener") && !strings.Contains(string(out), "waiting for ward's supervisor") {
		t.Errorf("workload with a refused listener: %q", out)
	}
}

// TestOnlyListenersAnswered: the socket is bind-mounted into every
// container, so any process there can connect; a peer the supervisor
// attributes to a container but that hands over no seccomp listener
// (nothing, a pipe, garbage) gets no acknowledgement and is dropped:
// the socket answers nothing but the hand-off.
func TestOnlyListenersAnswered(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sup.sock")
	d := alert.NewDispatcher(nil, alert.Limits{})
	s, err := Listen(Options{Socket: sock, Alerts: d,
		Resolve: func(pid int) (Container, error) { return Container{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, send := range map[string]func(c *net.UnixConn) error{
		"no fd": func(c *net.UnixConn) error { _, err := c.Write([]byte{landlock.HelloByte}); return err },
		"a pipe": func(c *net.UnixConn) error {
			_, _, err := c.WriteMsgUnix([]byte{landlock.HelloByte}, unix.UnixRights(int(r.Fd())), nil)
			return err
		},
		"an HTTP request": func(c *net.UnixConn) error {
			_, err := c.Write([]byte("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"))
			return err
		},
	} {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		if err := send(c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: the supervisor answered %q (%v); want the connection closed with no answer", name, buf[:n], err)
		}
		c.Close()
	}
}

// logLines collects what a supervisor logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// count is how many lines contain s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// idle opens n connections to sock that never speak, and counts those the
// supervisor closes (EOF) as it closes them.
type idle struct {
	conns  []*net.UnixConn
	mu     sync.Mutex
	closed int
}

func openIdle(t *testing.T, sock string, n int) *idle {
	t.Helper()
	f := &idle{}
	for range n {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		f.conns = append(f.conns, c)
		go func() {
			var b [1]byte
			if _, err := c.Read(b[:]); errors.Is(err, io.EOF) {
				f.mu.Lock()
				f.closed++
				f.mu.Unlock()
			}
		}()
	}
	t.Cleanup(f.close)
	return f
}

func (f *idle) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// waitClosed waits (up to 20 s, however loaded the machine) until the
// supervisor closed n of the connections, and returns how many it closed.
func (f *idle) waitClosed(n int) int {
	for deadline := time.Now().Add(20 * time.Second); f.count() < n && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	return f.count()
}

func (f *idle) close() {
	for _, c := range f.conns {
		c.Close()
	}
}

// TestConnectionFlood: the socket is in every container, so a container
// could open connections and never speak. One peer's connections beyond
// its bound are closed at once, with one log line however many; a
// workload of another container (another mount namespace) hands over its
// listener while the flood is held and is answered as usual; the
// connections held are closed at the handshake deadline; and the total
// bound closes what is over it, the supervisor taking hand-offs again once
// the flood is gone.
func TestConnectionFlood(t *testing.T) {
	needRoot(t)
	sink := &memSink{}
	ctr := Container{Container: alert.Container{ID: "victim"}, Decision: alert.Decision{ID: "dec-v"},
		Detection: func() policy.Detection { return policy.Detection{Enabled: true, Mode: policy.DetectEnforce} }}
	resolve := func(int) (Container, error) { return ctr, nil }
	const perPeer, flood = 4, 40

	t.Run("per container", func(t *testing.T) {
		var logs logLines
		sock := filepath.Join(t.TempDir(), "sup.sock")
		// A long deadline: the connections held stay held while the
		// test looks, however slow the machine.
		s, err := Listen(Options{Socket: sock, Alerts: alert.NewDispatcher([]alert.Sink{sink}, alert.Limits{}), Resolve: resolve,
			Logf: logs.logf, MaxHandshakes: perPeer, HandshakeTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// The flood comes from this process's mount namespace.
		f := openIdle(t, sock, flood)
		if n := f.waitClosed(flood - perPeer); n != flood-perPeer {
			t.Fatalf("%d of %d idle connections closed at once, want %d (all but the %d one container may hold)", n, flood, flood-perPeer, perPeer)
		}
		// Another container's first process, while the flood is held.
		w := startIn(t, sock, true)
		if got := w.do(t, "mount"); got != "EPERM" {
			t.Errorf("mount from the other container: %s, want EPERM", got)
		}
		if a := sink.wait(t, 1); len(a) != 1 || a[0].OutputFields["container.full_id"] != "victim" {
			t.Errorf("alerts: %+v", a)
		}
		if n := f.count(); n != flood-perPeer {
			t.Errorf("%d connections closed, want the %d held ones still held", n, perPeer)
		}
		if n := logs.count("refused a connection from pid"); n != 1 {
			t.Errorf("%d log lines about %d refused connections, want 1: %q", n, flood-perPeer, logs.lines)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "sup.sock")
		s, err := Listen(Options{Socket: sock, Alerts: alert.NewDispatcher(nil, alert.Limits{}), Resolve: resolve,
			Logf: t.Logf, HandshakeTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if f := openIdle(t, sock, 2); f.waitClosed(2) != 2 {
			t.Errorf("idle connections still open after the handshake deadline")
		}
	})

	t.Run("total", func(t *testing.T) {
		var logs logLines
		sock := filepath.Join(t.TempDir(), "sup.sock")
		const total = 3
		s, err := Listen(Options{Socket: sock, Alerts: alert.NewDispatcher(nil, alert.Limits{}), Resolve: resolve,
			Logf: logs.logf, MaxConns: total, MaxHandshakes: flood, HandshakeTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f := openIdle(t, sock, flood)
		if n := f.waitClosed(flood - total); n != flood-total {
			t.Fatalf("%d of %d idle connections closed at once, want %d", n, flood, flood-total)
		}
		if n := logs.count("hand-offs are unfinished"); n != 1 {
			t.Errorf("%d log lines about the total, want 1: %q", n, logs.lines)
		}
		// The flood gone, hand-offs are taken again.
		f.close()
		// The supervisor sees the flood's connections close (EOF) one
		// by one; until then a hand-off may still be refused.
		for deadline := time.Now().Add(20 * time.Second); s.pending.count() > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		}
		w := startIn(t, sock, true)
		if got := w.do(t, "getpid"); got != "ok" {
			t.Errorf("getpid: %s", got)
		}
	})
}

// TestBoundBeforeServed: a socket bound by one party (ward-runtime, before
// admission) takes connections before anyone serves it, mode 0666; the
// Supervisor handed the descriptor then serves them and removes the socket
// when it closes.
func TestBoundBeforeServed(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sup.sock")
	f, err := Bind(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o666 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket %v %v", fi, err)
	}
	// Connected before the supervisor exists: queued by the kernel.
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := Listen(Options{Socket: sock, Bound: f, Alerts: alert.NewDispatcher(nil, alert.Limits{}),
		Resolve: func(pid int) (Container, error) { return Container{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// Not a listener: the supervisor reads it, refuses it and closes.
	if _, _, err := c.WriteMsgUnix([]byte{landlock.HelloByte}, unix.UnixRights(int(r.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the queued connection was not served: %d %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

// benchEnv makes the test binary time a loop of system calls under
// ward's baseline, plain or notifying ("plain", "notify").
const benchEnv = "WARD_SUPERVISOR_BENCH_CHILD"

// benchLoop is how many getppid calls a timing child makes.
const benchLoop = 200_000

func benchChild(kind string) int {
	filter, err := baseline(kind == "notify")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	var flags uintptr
	if kind == "notify" {
		// The listener stays open and unread: none of the timed calls
		// is notified, as none of an ordinary workload's is.
		flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	if _, err := prog.Install(filter, flags); err != nil {
		fmt.Println(err)
		return 1
	}
	t0 := time.Now()
	for range benchLoop {
		unix.Getppid()
	}
	fmt.Println(time.Since(t0).Nanoseconds())
	return 0
}

// TestBenchmarkNotifyFilter: the cost of a call that is not notified,
// under the notifying baseline against the plain one, as alternated
// pairs of child processes (WARD_BENCH=1; WARD_BENCH_PAIRS, default 30).
func TestBenchmarkNotifyFilter(t *testing.T) {
	needRoot(t)
	if os.Getenv("WARD_BENCH") != "1" {
		t.Skip("benchmark: set WARD_BENCH=1")
	}
	pairs := 30
	if n, err := strconv.Atoi(os.Getenv("WARD_BENCH_PAIRS")); err == nil && n > 0 {
		pairs = n
	}
	run := func(kind string) float64 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), benchEnv+"="+kind)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", kind, err, out)
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("%s: %q", kind, out)
		}
		return ns / benchLoop
	}
	var plain, notify, ratios []float64
	for i := range pairs {
		var p, n float64
		if i%2 == 0 {
			p, n = run("plain"), run("notify")
		} else {
			n, p = run("notify"), run("plain")
		}
		plain, notify, ratios = append(plain, p), append(notify, n), append(ratios, n/p)
	}
	t.Logf("getppid under ward's baseline, %d alternated pairs (medians): plain %.1f ns, notifying %.1f ns; median per-pair ratio %.3f",
		pairs, median(plain), median(notify), median(ratios))
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
