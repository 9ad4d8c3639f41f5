package wardruntime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/admission"
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
	t, _, err := c.prepare(id, &cl, false, nil)
	if err != nil {
		return err
	}
	return c.execBackend(t, "create", c.containerArgs(t, cl, id))
}

// containerArgs are the subcommand arguments for a backend: the caller's
// flags (less the ones the backend lacks) and the container ID.
func (c *ctx) containerArgs(t target, cl cmdline, id string) []string {
	var drop []string
	for _, f := range cl.flags {
		if slices.Contains(t.unsupported, f.name) {
			drop = append(drop, f.name)
			if f.name == "preserve-fds" && f.value != "0" {
				c.log.warn(fmt.Sprintf("ward-runtime: %s has no --preserve-fds; %s extra descriptors are not passed to container %s", t.backend, f.value, id))
			}
		}
	}
	return append(cl.tokens(drop...), id)
}

// prepare is the front half of create and run: admit the bundle (judge,
// rewrite, lease, decision log), save the container's record and start its
// supervisor (supervise.go), which reaps it after a foreground run when reap is
// set. It returns the backend to run and the saved record. Any error means
// the container must not start. usable, when set, refuses a backend the
// subcommand cannot run on.
func (c *ctx) prepare(id string, cl *cmdline, reap bool, usable func(target) error) (target, *Record, error) {
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
	sock := c.bindSupervisor(id)
	adm, err := c.admitter(sock.socket())
	if err != nil {
		sock.release()
		return target{}, nil, admission.Unjudged(id, false, err)
	}
	defer adm.Close()
	ad, err := adm.Admit(admission.Request{
		ID: id, BundleDir: abs, Owner: c.usernsOwner(id), BlockPerLayer: true,
		Rootfs:     runtimeRootfs{c: c, policy: adm.Policy()},
		SandboxPID: c.initPID, Infra: c.infra,
	})
	if err != nil {
		sock.release()
		return target{}, nil, err
	}
	v := &ad.Verdict
	c.log.debugf("ward-runtime: %s: %s (%s) rule=%q: %s", id, v.Action, v.Backend, v.Rule, v.Reason)
	t, err := c.targetFor(ad.Runtime)
	if err == nil && usable != nil {
		err = usable(t)
	}
	if err != nil {
		sock.release()
		adm.Undo(ad)
		return target{}, nil, fmt.Errorf("ward: %w", err)
	}
	rec := &Record{
		ID: id, Backend: t.backend, Runtime: t.path, Flags: t.flags, Root: t.root,
		Dialect: t.dialect, Unsupported: t.unsupported, Sandbox: ad.Sandbox(),
		Bundle: abs, Decision: recordDecision(&v.Decision), Report: &ad.Entry.Report,
		Created: time.Now().UTC(), Userns: ad.Lease, Supervisor: sock.socket(),
	}
	if s := ad.Bundle.Spec; s != nil {
		rec.Manager = s.Annotations[annotationManager]
	}
	if err := c.records().save(rec); err != nil {
		sock.release()
		adm.Undo(ad)
		return target{}, nil, fmt.Errorf("ward: %w", err)
	}
	if err := c.startHelper(rec, ad, adm, sock, reap); err != nil {
		c.records().remove(id)
		adm.Undo(ad)
		return target{}, nil, fmt.Errorf("ward: %w", err)
	}
	return t, rec, nil
}

// oneOperand returns the single container ID a subcommand takes.
func oneOperand(cl cmdline, sub string) (string, error) {
	if len(cl.operands) != 1 {
		return "", fmt.Errorf("%s: %q requires exactly 1 argument(s)", sub, sub)
	}
	return cl.operands[0], nil
}

// infra reports whether ward-runtime admitted container id as one outside
// any pod: a Podman pod's infra container, which its pod's members name as
// their sandbox (admission.Request.Infra); with its lease and process.
func (c *ctx) infra(id string) (*admission.Lease, int, bool) {
	rec, err := c.records().load(id)
	if err != nil || rec.Sandbox || rec.Report == nil || rec.Report.Workload.Kind != bundle.Standalone {
		return nil, 0, false
	}
	pid, err := c.initPID(id)
	if err != nil {
		pid = 0
	}
	return rec.Userns, pid, true
}
