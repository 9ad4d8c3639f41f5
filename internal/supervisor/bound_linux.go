package supervisor

import (
	"fmt"
	"sync"
	"time"
)

// Why the supervisor bounds its connections: its socket is bind-mounted
// into every container it serves, and a connection is held until the peer
// hands over its listener. Unbounded, a container could open connections
// and never speak, each one a goroutine and a descriptor in the supervisor
// for as long as the handshake may last, until the supervisor (the pod's
// shim, or ward-runtime's node supervisor) runs out of them and the next
// container or exec session of the pod cannot hand over its listener, so
// does not start.
//
// So: connections still in their handshake are counted per peer mount
// namespace (every container has one of its own, its exec sessions share
// it, and a container cannot make another: unshare is one of the calls
// ward denies, and where a policy lets it through the total still holds;
// the kernel says which namespace the peer is in) and in total; one over either bound is closed at once; and a handshake has a
// short deadline. A container that floods the socket can then only hold
// back its own exec sessions, for as long as it keeps flooding; the other
// containers of the pod hand over their listeners as before. A legitimate
// hand-off takes milliseconds: ward-init connects, restricts itself,
// installs its filter and sends the listener.
const (
	// DefaultMaxHandshakes bounds the unfinished handshakes of one peer
	// mount namespace (one container and its exec sessions).
	DefaultMaxHandshakes = 8
	// DefaultMaxConns bounds the unfinished handshakes in total.
	DefaultMaxConns = 64
	// DefaultHandshakeTimeout is how long a peer has to hand over its
	// listener once connected.
	DefaultHandshakeTimeout = 3 * time.Second
	// refusalQuiet is how often a peer's refusals are logged: once, then
	// at most once per refusalQuiet with a count, so that a flood cannot
	// fill the door's log either.
	refusalQuiet = time.Minute
)

// handshakes counts unfinished handshakes, by peer and in total.
type handshakes struct {
	perPeer, total int

	mu     sync.Mutex
	n      int
	byPeer map[[2]uint64]int
}

func newHandshakes(perPeer, total int) *handshakes {
	if perPeer <= 0 {
		perPeer = DefaultMaxHandshakes
	}
	if total <= 0 {
		total = DefaultMaxConns
	}
	return &handshakes{perPeer: perPeer, total: total, byPeer: make(map[[2]uint64]int)}
}

// enter counts a new connection; false when the supervisor has as many
// unfinished handshakes as it takes.
func (h *handshakes) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n >= h.total {
		return false
	}
	h.n++
	return true
}

// leave uncounts a connection enter counted.
func (h *handshakes) leave() {
	h.mu.Lock()
	h.n--
	h.mu.Unlock()
}

// enterPeer counts a connection against its peer's mount namespace; false
// when that peer has as many unfinished handshakes as it may.
func (h *handshakes) enterPeer(ns [2]uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byPeer[ns] >= h.perPeer {
		return false
	}
	h.byPeer[ns]++
	return true
}

func (h *handshakes) leavePeer(ns [2]uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byPeer[ns]--; h.byPeer[ns] <= 0 {
		delete(h.byPeer, ns)
	}
}

// quietLog logs a refusal once per key, then at most once per quiet
// period with how many it held back.
type quietLog struct {
	logf  func(format string, args ...any)
	quiet time.Duration

	mu   sync.Mutex
	keys map[string]*quietKey
}

type quietKey struct {
	logged time.Time
	held   int
	msg    string
}

func newQuietLog(logf func(string, ...any), quiet time.Duration) *quietLog {
	return &quietLog{logf: logf, quiet: quiet, keys: make(map[string]*quietKey)}
}

// printf logs under key unless key was logged within the quiet period.
func (q *quietLog) printf(key, format string, args ...any) {
	now := time.Now()
	base := fmt.Sprintf(format, args...)
	msg := base
	q.mu.Lock()
	k, ok := q.keys[key]
	if ok && now.Sub(k.logged) < q.quiet {
		k.held++
		q.mu.Unlock()
		return
	}
	var lines []string
	if ok && k.held > 0 {
		msg += fmt.Sprintf(" (and %d more since the last report)", k.held)
	}
	if !ok {
		// Forget keys quiet for a whole period (peers gone), so that the
		// map stays as small as the flood is; what they held back is
		// reported as they go.
		for key, k := range q.keys {
			if now.Sub(k.logged) >= q.quiet {
				if k.held > 0 {
					lines = append(lines, fmt.Sprintf("%s (and %d more before it stopped)", k.msg, k.held))
				}
				delete(q.keys, key)
			}
		}
	}
	q.keys[key] = &quietKey{logged: now, msg: base}
	q.mu.Unlock()
	for _, l := range append(lines, msg) {
		q.logf("%s; logged at most once per %s", l, q.quiet)
	}
}

// count is how many handshakes are unfinished.
func (h *handshakes) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
