package wardruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/supervisor"
)

// The hand-over: what ward-runtime does to give an admitted container to
// the node's supervisor (node.go), starting one when none runs.

// nodeJob is one container handed over: the caller's global flags and
// WARD_ environment (the configuration it was admitted under), its ID,
// its socket (or "-") and what the supervisor needs of it. The bound
// socket and the pidfd travel as descriptors, in that order.
type nodeJob struct {
	Args  []string   `json:"args"`
	Env   []string   `json:"env,omitempty"`
	ID    string     `json:"id"`
	Sock  string     `json:"sock"`
	Info  helperInfo `json:"info"`
	Pidfd bool       `json:"pidfd,omitempty"`
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
			// The supervisor this call started is at its Go start (tens
			// of milliseconds): the job waits in its socket and the
			// container does not wait for the answer. It cannot be
			// leaving yet; if it never serves the container, the
			// container's ward-init finds no supervisor and refuses to
			// start.
			err = unix.Sendmsg(fd, data, unix.UnixRights(fds...), nil, 0)
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("handing over to the node's supervisor: %w", err)
			}
			return nil
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
	f, err := supervisor.Listening(path, unix.SOCK_SEQPACKET, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the node's control socket: %w", err)
	}
	return f, nil
}
