package shim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/log"

	"github.com/ward-runtime/ward/atomicfile"
	"github.com/ward-runtime/ward/backend"
	"github.com/ward-runtime/ward/decisionlog"
	"github.com/ward-runtime/ward/judge"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/seccompbpf"
	"github.com/ward-runtime/ward/userns"
)

// env is everything one configuration file gives a shim: the policy, its
// judge and the decision log.
type env struct {
	cfg    Config
	policy *policy.Policy
	judge  *judge.Judge
	log    *decisionlog.Log
	// pool is the user-namespace ID pool when the policy turns the
	// step on, nil otherwise.
	pool []userns.Range
	// events publishes decisions to containerd; nil publishes nothing.
	events events.Publisher
	// pending counts decision events still being built and sent, which
	// the shim waits for before it exits.
	pending sync.WaitGroup
}

// envCache loads each configuration once per shim. A shim serves one pod of
// one handler, so in practice it holds one entry.
type envCache struct {
	mu     sync.Mutex
	envs   map[string]*env
	events events.Publisher
}

func newEnvCache(p events.Publisher) *envCache {
	return &envCache{envs: make(map[string]*env), events: p}
}

func (c *envCache) get(handlerConfig string) (*env, error) {
	path, required := ConfigPath(handlerConfig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.envs[path]; ok {
		return e, nil
	}
	e, err := loadEnv(path, required)
	if err != nil {
		return nil, err
	}
	e.events = c.events
	c.envs[path] = e
	// Parsing the policy and building the judge leave garbage several
	// times the size of what is kept: the trimmer (memory.go) hands it
	// back once the pod's calls are over, not on this Create's path.
	return e, nil
}

func (c *envCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, e := range c.envs {
		// A rejected sandbox's shim exits right after its Create: its
		// decision event must still reach containerd.
		if !waitTimeout(&e.pending, 2*time.Second) {
			errs = append(errs, errors.New("ward: decision events still unsent at shutdown"))
		}
		errs = append(errs, e.log.Close())
		delete(c.envs, k)
	}
	return errors.Join(errs...)
}

func loadEnv(path string, required bool) (*env, error) {
	cfg, err := LoadConfig(path, required)
	if err != nil {
		return nil, err
	}
	p, err := policy.Load(cfg.Policy)
	if err != nil {
		return nil, err
	}
	var pool []userns.Range
	if p.Userns.Enabled {
		if pool, err = cfg.Userns.Pool(p.Userns.Pool); err != nil {
			return nil, fmt.Errorf("policy enables user namespaces: %w", err)
		}
	}
	j, err := judge.New(p, judge.Options{Launcher: judge.Launcher(), UsernsPool: pool, FilterDir: seccompbpf.DefaultDir})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.DecisionLog), 0o750); err != nil {
		return nil, fmt.Errorf("creating decision log directory: %w", err)
	}
	l, err := decisionlog.Open(cfg.DecisionLog)
	if err != nil {
		return nil, err
	}
	return &env{cfg: cfg, policy: p, judge: j, log: l, pool: pool}, nil
}

// record writes a decision to the decision log, and a one-line summary of
// it to the shim's log, which containerd copies into its own.  A decision
// log that cannot be written is reported, not fatal: the decision itself
// was made and enforced.
func (e *env) record(ctx context.Context, entry decisionlog.Entry) {
	if entry.Time.IsZero() {
		entry.Time = time.Now().UTC()
	}
	if err := e.log.Write(entry); err != nil {
		log.G(ctx).WithError(err).Error("ward: writing decision log")
	}
	ids := findingIDs(&entry)
	fields := log.Fields{
		"ward.event":     entry.Event,
		"ward.container": entry.ContainerID,
		"ward.action":    entry.Action,
		"ward.backend":   entry.Backend,
		"ward.rule":      entry.Rule,
		"ward.audit":     entry.Audit,
		"ward.findings":  strings.Join(ids, ","),
		"ward.attack":    strings.Join(entry.Attack, ","),
		"ward.pod":       entry.Workload.Namespace + "/" + entry.Workload.Pod,
		"ward.name":      entry.Workload.Container,
		"ward.image":     entry.Workload.Image,
	}
	if entry.Error != "" {
		fields["ward.error"] = entry.Error
	}
	log.G(ctx).WithFields(fields).Info("ward decision")
	publishDecision(ctx, e.events, &entry, &e.pending)
}

// runscBinary is the runtime binary runc's shim calls for a gVisor
// container: a two-line script, under the state directory and named by a
// hash of its content, that runs this binary as the runsc wrapper (see
// runscwrap.go) with runsc's path and configured flags.
func (e *env) runscBinary(rt backend.Runtime) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the shim binary: %w", err)
	}
	script, err := runscWrapperScript(self, rt.Path, rt.Flags)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(script))
	dir := filepath.Join(e.cfg.StateDir, "bin")
	path := filepath.Join(dir, "runsc-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating runsc wrapper directory: %w", err)
	}
	if err := atomicfile.Write(path, []byte(script), 0o755, true); err != nil {
		return "", fmt.Errorf("writing runsc wrapper: %w", err)
	}
	return path, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// waitTimeout waits for wg, at most d; it reports whether wg finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
