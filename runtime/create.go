package runtime

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/decisionlog"
	"github.com/ward-runtime/ward/nodefacts"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/userns"
)

func createFlags() *flagSpec {
	return newSpec(false,
		[]string{"no-pivot", "no-new-keyring"},
		[]string{"bundle,b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"},
		nil)
}

// runCreate implements `create [flags] ID`: judge the bundle, rewrite it,
// remember the backend, then become that backend's `create`.
func runCreate(c *ctx, cl cmdline) error {
	id, err := oneOperand(cl, "create")
	if err != nil {
		return err
	}
	t, _, err := c.prepare(id, &cl, "create")
	if err != nil {
		return err
	}
	return c.execBackend(t, "create", c.containerArgs(t, cl, id, createOnlyRunc()))
}

// createOnlyRunc are create/run flags runsc does not have. Dropping them
// is safe: they tune how runc sets up the container on the host, and the
// gVisor sandbox replaces that setup altogether.
func createOnlyRunc() []string {
	return []string{"no-pivot", "no-new-keyring", "pidfd-socket", "preserve-fds", "keep", "no-subreaper"}
}

// containerArgs are the subcommand arguments for a backend: the caller's
// flags (less the ones runsc lacks) and the container ID.
func (c *ctx) containerArgs(t target, cl cmdline, id string, runcOnly []string) []string {
	var drop []string
	if t.runsc() {
		for _, f := range cl.flags {
			if slices.Contains(runcOnly, f.name) {
				drop = append(drop, f.name)
				if f.name == "preserve-fds" && f.value != "0" {
					c.log.warn(fmt.Sprintf("ward-runtime: runsc has no --preserve-fds; %s extra descriptors are not passed to container %s", f.value, id))
				}
			}
		}
	}
	return append(cl.tokens(drop...), id)
}

// prepare is the front half of create and run: judge the bundle, write the
// rewritten config.json, log the decision and save the container's record.
// It returns the backend to run and the saved record. Any error means the
// container must not start, and is logged to the decision log as such.
func (c *ctx) prepare(id string, cl *cmdline, event string) (target, *Record, error) {
	if err := checkID(id); err != nil {
		return target{}, nil, err
	}
	dir, _ := cl.value("bundle")
	if dir == "" {
		// runc's default bundle is the working directory.
		wd, err := os.Getwd()
		if err != nil {
			return target{}, nil, fmt.Errorf("finding the bundle: %w", err)
		}
		dir = wd
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return target{}, nil, fmt.Errorf("finding the bundle: %w", err)
	}
	entry := decisionlog.Entry{Event: event, ContainerID: id, Bundle: abs}
	t, rec, err := c.decide(id, abs, &entry)
	if err != nil {
		entry.Error = err.Error()
		if lerr := c.logDecision(entry); lerr != nil {
			c.log.warn(fmt.Sprintf("ward-runtime: %v", lerr))
		}
		return target{}, nil, err
	}
	if err := c.logDecision(entry); err != nil {
		return target{}, nil, fmt.Errorf("container %s not started: %w", id, err)
	}
	return t, rec, nil
}

// rejectedError is a policy rejection.
type rejectedError struct {
	rule, reason string
	findings     []string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("ward: container rejected by policy rule %s (%s): %s", e.rule, strings.Join(e.findings, ", "), e.reason)
}

func (c *ctx) decide(id, dir string, entry *decisionlog.Entry) (target, *Record, error) {
	b, err := bundle.LoadOriginal(dir, 0)
	if err != nil {
		return target{}, nil, fmt.Errorf("ward: loading bundle: %w", err)
	}
	p, j, pool, err := c.judge()
	if err != nil {
		return target{}, nil, fmt.Errorf("ward: %w", err)
	}
	in := policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec),
		Node: nodefacts.Gather(b.Spec, b.Dir, p, nodefacts.Options{Node: nodefacts.OwnNamespaces()}), ContainerID: id}
	var us *RecordUserns
	if pool != nil {
		a, err := c.cfg.Userns.Allocator(pool)
		if err != nil {
			return target{}, nil, fmt.Errorf("ward: %w", err)
		}
		if us, in.Userns, err = c.allocUserns(a, id); err != nil {
			return target{}, nil, fmt.Errorf("ward: %w", err)
		}
	}
	// Until the record is saved, a failure gives the block back: no
	// delete will come for a container that was never created.
	saved := false
	defer func() {
		if us != nil && !saved {
			if err := c.releaseUserns(us); err != nil {
				c.log.warn(fmt.Sprintf("ward-runtime: %v", err))
			}
		}
	}()
	var sysctl map[string]string
	if b.Spec.Linux != nil {
		sysctl = maps.Clone(b.Spec.Linux.Sysctl)
	}
	v, err := j.Spec(in)
	if err == nil && us != nil && usesBlock(&v) {
		if err = c.idmapRootfs(p, b, us, &v); err == nil {
			err = userns.ApplyMovedNetSysctls(sysctl, b.Spec)
		}
		if err != nil {
			err = fmt.Errorf("user namespace: %w", err)
		}
	}
	entry.Report = v.Report(p)
	if err != nil {
		return target{}, nil, fmt.Errorf("ward: hardening the spec: %w", err)
	}
	if us != nil && !usesBlock(&v) {
		if err := c.releaseUserns(us); err != nil {
			return target{}, nil, fmt.Errorf("ward: %w", err)
		}
		us = nil
	}
	c.log.debugf("ward-runtime: %s: %s (%s) rule=%q: %s", id, v.Action, v.Backend, v.Rule, v.Reason)
	if v.Action == policy.Reject && !v.Audit {
		re := &rejectedError{rule: v.Rule, reason: v.Reason}
		for _, f := range entry.Report.Findings {
			if strings.HasPrefix(f.Ward, "rejected") {
				re.findings = append(re.findings, f.ID)
			}
		}
		return target{}, nil, re
	}
	be := policy.Runc
	if v.Action == policy.Sandbox && !v.Audit {
		be = v.Backend
	}
	t, err := c.resolve(be, v.Rule)
	if err != nil {
		return target{}, nil, fmt.Errorf("ward: %w", err)
	}
	if v.Rewritten() {
		if err := bundle.WriteSpec(b); err != nil {
			return target{}, nil, fmt.Errorf("ward: writing the hardened spec: %w", err)
		}
	}
	rec := &Record{
		ID: id, Backend: t.backend, Runtime: t.path, Flags: t.flags, Root: t.root,
		Bundle: dir, Decision: recordDecision(&v.Decision), Created: time.Now().UTC(), Userns: us,
	}
	if err := c.records().save(rec); err != nil {
		return target{}, nil, fmt.Errorf("ward: %w", err)
	}
	saved = true
	return t, rec, nil
}

// oneOperand returns the single container ID a subcommand takes.
func oneOperand(cl cmdline, sub string) (string, error) {
	if len(cl.operands) != 1 {
		return "", fmt.Errorf("%s: %q requires exactly 1 argument(s)", sub, sub)
	}
	return cl.operands[0], nil
}
