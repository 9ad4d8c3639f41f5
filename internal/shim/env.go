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
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/seccompbpf"
	"github.com/ward-runtime/ward/internal/supervisor"
	"github.com/ward-runtime/ward/policy"
)

// loadConfig reads the node configuration a handler names (its WardConfig
// option, "" for none), with the shim's deprecated shim.yaml as the last
// resort.
func loadConfig(handler string) (nodeconfig.Config, error) {
	return nodeconfig.Load(nodeconfig.Sources{File: handler, Getenv: os.Getenv, Legacy: nodeconfig.LegacyShimPath})
}

// admitters keeps one Admitter per node configuration the shim's handlers
// name (a shim serves one pod of one handler, so in practice one), and
// rebuilds it for new containers when the configuration file or the policy
// it names changes: kubelet-style reload. A change that does not load
// keeps the last good Admitter, with an error in the shim's log on each
// container it decides (ward doctor shows the policy's error too).
type admitters struct {
	mu      sync.Mutex
	byFile  map[string]*loaded
	retired []*admission.Admitter
	events  events.Publisher
	nodeNS  map[specs.LinuxNamespaceType]policy.ObjectID
	// pending counts decision events still being built and sent, which
	// the shim waits for before it exits.
	pending sync.WaitGroup
	// detect is the pod's seccomp supervisor (docs/detection.md).
	detect *supervisor.Door
}

type loaded struct {
	adm   *admission.Admitter
	stamp string
}

func newAdmitters(p events.Publisher, nodeNS map[specs.LinuxNamespaceType]policy.ObjectID) *admitters {
	return &admitters{byFile: make(map[string]*loaded), events: p, nodeNS: nodeNS, detect: newDetect()}
}

// get returns the Admitter for the handler's configuration.
func (c *admitters) get(ctx context.Context, handler string) (*admission.Admitter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.byFile[handler]
	var stamp string
	if cur != nil {
		stamp = fileStamps(cur.adm.Config())
		if stamp == cur.stamp {
			return cur.adm, nil
		}
	}
	adm, err := c.build(ctx, handler)
	if err != nil {
		if cur == nil {
			return nil, err
		}
		log.G(ctx).WithError(err).Error("ward: the changed node configuration or policy does not load; keeping the last good one")
		cur.stamp = stamp // report once per change, not per container
		return cur.adm, nil
	}
	if cur != nil {
		log.G(ctx).WithField("ward.policy", adm.Policy().Source).Info("ward: node configuration or policy changed; new containers are decided by the new one")
		// Containers admitted by the old Admitter may still be logging
		// through it (exec sessions): it closes with the shim.
		c.retired = append(c.retired, cur.adm)
	}
	c.byFile[handler] = &loaded{adm: adm, stamp: fileStamps(adm.Config())}
	return adm, nil
}

func (c *admitters) build(ctx context.Context, handler string) (*admission.Admitter, error) {
	cfg, err := loadConfig(handler)
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.Notes {
		log.G(ctx).Warn("ward: " + n)
	}
	// Without a supervisor the baseline still refuses escape calls; it
	// only cannot say so.
	sock, err := c.detect.Start(cfg)
	if err != nil {
		log.G(ctx).WithError(err).Error("ward: no seccomp supervisor; escape attempts in this pod are refused without alerts")
	}
	return admission.New(cfg, admission.Options{
		Door:           admission.DoorShim,
		Launcher:       judge.Launcher(),
		FilterDir:      seccompbpf.DefaultDir,
		Supervisor:     sock,
		NodeNamespaces: c.nodeNS,
		Publish:        func(e decisionlog.Entry) { c.publish(ctx, e) },
	})
}

// fileStamps identifies the versions of the files an Admitter was built
// from: the configuration file (the one it came from, or, with none, the
// default path, so that one created later is seen) and the policy (inode,
// size, mtime each). Two stat calls per Create.
func fileStamps(cfg nodeconfig.Config) string {
	config := cfg.Source
	if config == "" {
		config = nodeconfig.DefaultPath
	}
	var b strings.Builder
	for _, p := range []string{config, cfg.Policy} {
		var st syscall.Stat_t
		if p == "" || syscall.Stat(p, &st) != nil {
			b.WriteString("-;")
			continue
		}
		fmt.Fprintf(&b, "%d:%d:%d.%d;", st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	return b.String()
}

func (c *admitters) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	// A rejected sandbox's shim exits right after its Create: its decision
	// event must still reach containerd.
	if !waitTimeout(&c.pending, 2*time.Second) {
		errs = append(errs, errors.New("ward: decision events still unsent at shutdown"))
	}
	for k, l := range c.byFile {
		errs = append(errs, l.adm.Close())
		delete(c.byFile, k)
	}
	for _, a := range c.retired {
		errs = append(errs, a.Close())
	}
	c.retired = nil
	errs = append(errs, c.detect.Close())
	return errors.Join(errs...)
}

// publish writes a one-line summary of a decision to the shim's log, which
// containerd copies into its own, and sends it to containerd as an event.
func (c *admitters) publish(ctx context.Context, entry decisionlog.Entry) {
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
	publishDecision(ctx, c.events, &entry, &c.pending)
}

// runtimeBinary is the binary runc's shim code calls for a container on
// backend rt. A runtime that speaks runsc's dialect gets the wrapper: a
// two-line script, under the state directory and named by a hash of its
// content, that runs this binary as the runsc wrapper (see runscwrap.go)
// with runsc's path and configured flags. Others get their own path, with
// the configured flags left to a wrapper of the operator's.
func runtimeBinary(stateDir string, rt backend.Runtime) (string, error) {
	if !rt.Runsc() {
		return rt.Path, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the shim binary: %w", err)
	}
	script, err := runscWrapperScript(self, rt.Path, rt.Flags)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(script))
	dir := filepath.Join(stateDir, "bin")
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

// runtimeRoot is the state root runc's shim code gives a backend's binary.
func runtimeRoot(stateDir string, rt backend.Runtime) string {
	if rt.Root != "" {
		return rt.Root
	}
	return filepath.Join(stateDir, rt.StateName)
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
