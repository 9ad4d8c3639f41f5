package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
	"github.com/ward-runtime/ward/policy"
)

// A container whose own seccomp profile ward compiled (harden's seccomp
// step) runs it composed with the baseline: the calls the baseline
// notifies reach the supervisor even where the profile refuses them, and
// the supervisor answers those as the profile does (seccompbpf.Answer).
// It runs the profile's program, kept verbatim in the composed filter's
// file, on the notification's seccomp_data. The file is the one the
// hardened spec (ward's own record of the container) mounts for
// ward-init, read on the host: never anything the container can write.

// maxOwnPrograms bounds the evaluators a supervisor keeps (one per
// distinct profile file; a pod has a handful).
const maxOwnPrograms = 64

// ownPrograms caches one evaluator per composed filter file.
type ownPrograms struct {
	mu    sync.Mutex
	byKey map[string]*seccompbpf.Evaluator
}

func newOwnPrograms() *ownPrograms {
	return &ownPrograms{byKey: make(map[string]*seccompbpf.Evaluator)}
}

// evaluator loads the workload's program from the composed filter at
// path: the file is named by its content's SHA-256 (seccompbpf.Store), so
// a damaged or replaced file is refused.
func (o *ownPrograms) evaluator(path string) (*seccompbpf.Evaluator, error) {
	o.mu.Lock()
	e, ok := o.byKey[path]
	o.mu.Unlock()
	if ok {
		return e, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the container's seccomp profile: %w", err)
	}
	sum := sha256.Sum256(b)
	if name := filepath.Base(path); name != hex.EncodeToString(sum[:])+".bpf" {
		return nil, fmt.Errorf("the container's seccomp profile %s does not match its digest", path)
	}
	p, err := prog.Unmarshal(b, prog.NativeAudit())
	if err != nil {
		return nil, fmt.Errorf("the container's seccomp profile %s: %w", path, err)
	}
	own, ok := p.Workload()
	if !ok {
		return nil, fmt.Errorf("the container's seccomp profile %s is not composed with ward's baseline", path)
	}
	if e, err = seccompbpf.NewEvaluator(own); err != nil {
		return nil, err
	}
	o.mu.Lock()
	if len(o.byKey) < maxOwnPrograms {
		o.byKey[path] = e
	}
	o.mu.Unlock()
	return e, nil
}

// verdict is the answer to a notified call: the container's own
// profile's when it refuses the call, ward's rule's (resp) otherwise. It
// returns the response to send and what the alert says was done. When
// the profile cannot be read the call is refused (EPERM): the profile's
// verdict is unknown, and ward fails closed.
func (s *Supervisor) verdict(c Container, n *notif, resp policy.Response) (notifResp, string, error) {
	rule := seccompbpf.RetErrno | uint32(unix.EPERM)
	if resp == policy.RespondAlert {
		rule = seccompbpf.RetAllow
	}
	answer, err := rule, error(nil)
	if c.Profile != "" {
		var e *seccompbpf.Evaluator
		var own uint32
		if e, err = s.own.evaluator(c.Profile); err == nil {
			own, err = e.Evaluate(seccompbpf.Data{Nr: n.Data.Nr, Arch: n.Data.Arch, IP: n.Data.IP, Args: n.Data.Args})
		}
		if err == nil {
			answer = seccompbpf.Answer(own, rule)
		} else {
			answer = seccompbpf.RetErrno | uint32(unix.EPERM)
		}
	}
	did := string(resp)
	if answer == seccompbpf.RetAllow {
		return notifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}, "allow", err
	}
	if resp == policy.RespondAlert {
		did = string(policy.RespondDeny)
	}
	// Answer returns ALLOW or an errno; the kernel caps an errno at
	// MAX_ERRNO.
	return notifResp{ID: n.ID, Error: -int32(min(answer&0xffff, 4095))}, did, err
}
