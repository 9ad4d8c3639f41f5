package wardruntime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/userns"
)

// exec's flags end at the container ID: the rest is the command to run.
func execFlags() *flagSpec {
	return newSpec(true,
		[]string{"tty,t", "detach,d", "no-new-privs", "ignore-paused"},
		[]string{"console-socket", "pidfd-socket", "cwd", "user,u", "process,p", "pid-file",
			"process-label", "apparmor", "preserve-fds"},
		[]string{"env,e", "additional-gids,g", "cap,c", "cgroup"})
}

// processFlags describe the process itself. ward folds them into one
// process document, judges it, and hands the backend only --process, so an
// exec session cannot ask for anything ward did not see.
func processFlags() []string {
	return []string{"process", "cwd", "env", "tty", "user", "additional-gids", "process-label",
		"apparmor", "no-new-privs", "cap"}
}

// maxProcessSize bounds a --process file.
const maxProcessSize = 1 << 20

// runExec implements `exec [flags] ID [COMMAND...]`. The process (from
// --process or built from the container's spec and the flags, as runc
// builds it) is judged against the container's decision and handed to the
// container's backend as a sealed in-memory --process file.
func runExec(c *ctx, cl cmdline) error {
	if len(cl.operands) == 0 {
		return fmt.Errorf("exec: %q requires a minimum of 1 argument(s)", "exec")
	}
	id := cl.operands[0]
	t, rec, err := c.targetOf(id)
	if err != nil {
		return err
	}
	if rec == nil {
		// Without a record ward does not know the container's decision, and
		// an exec it cannot judge does not run.
		return fmt.Errorf("ward: no record of container %s under %s; refusing an exec ward cannot judge", id, c.root())
	}
	p, err := execProcess(cl, rec)
	if err != nil {
		return fmt.Errorf("ward: exec: %w", err)
	}
	adm, err := c.admitter("")
	if err != nil {
		return admission.Unjudged(id, true, err)
	}
	defer adm.Close()
	if _, err := adm.AdmitExec(admission.ExecRequest{ID: id, Bundle: rec.Bundle, Process: p, Container: rec.report()}); err != nil {
		return err
	}
	c.adoptHostRootWrites(rec)
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("ward: encoding exec process: %w", err)
	}
	preserve := 0
	if v, ok := cl.value("preserve-fds"); ok {
		if preserve, err = strconv.Atoi(v); err != nil || preserve < 0 {
			return fmt.Errorf("exec: invalid --preserve-fds %q", v)
		}
	}
	path, err := inheritableMemfd("ward-exec-process", data, 3+preserve+8)
	if err != nil {
		return fmt.Errorf("ward: %w", err)
	}
	drop := append(processFlags(), t.unsupported...)
	if preserve > 0 && slices.Contains(t.unsupported, "preserve-fds") {
		c.log.warn(fmt.Sprintf("ward-runtime: %s has no --preserve-fds; %d extra descriptors are not passed to the exec in %s", t.backend, preserve, id))
	}
	args := append(cl.tokens(drop...), "--process", path, id)
	return c.execBackend(t, "exec", args)
}

// execProcess is the process an exec asks for.
func execProcess(cl cmdline, rec *Record) (*specs.Process, error) {
	if path, ok := cl.value("process"); ok {
		return readProcess(path)
	}
	if len(cl.operands) < 2 {
		return nil, fmt.Errorf("exec args cannot be empty")
	}
	// runc starts from the container's own process (the spec ward wrote)
	// and applies the flags on top.
	b, err := bundle.Load(rec.Bundle, 0)
	if err != nil {
		return nil, fmt.Errorf("reading the container's spec: %w", err)
	}
	p := b.Spec.Process
	p.Args = cl.operands[1:]
	if v, ok := cl.value("cwd"); ok && v != "" {
		p.Cwd = v
	}
	if v, ok := cl.value("apparmor"); ok && v != "" {
		p.ApparmorProfile = v
	}
	if v, ok := cl.value("process-label"); ok && v != "" {
		p.SelinuxLabel = v
	}
	if caps := cl.values("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		pc := p.Capabilities
		for _, cp := range caps {
			pc.Bounding = append(pc.Bounding, cp)
			pc.Effective = append(pc.Effective, cp)
			pc.Permitted = append(pc.Permitted, cp)
			if pc.Inheritable != nil {
				pc.Ambient = append(pc.Ambient, cp)
			}
		}
	}
	p.Env = append(p.Env, cl.values("env")...)
	p.Terminal = cl.bool("tty")
	if cl.has("no-new-privs") {
		p.NoNewPrivileges = cl.bool("no-new-privs")
	}
	if v, ok := cl.value("user"); ok && v != "" {
		uid, gid, hasGID := strings.Cut(v, ":")
		if hasGID {
			n, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad gid: %w", err)
			}
			p.User.GID = uint32(n)
		}
		n, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad uid: %w", err)
		}
		p.User.UID = uint32(n)
	}
	for _, g := range cl.values("additional-gids") {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("additional-gids must be a positive number %s", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
	}
	return p, nil
}

// readProcess reads a --process file. Unknown fields are refused: ward
// would drop them when it re-encodes the process, and a field ward cannot
// see is one it cannot judge.
func readProcess(path string) (*specs.Process, error) {
	data, err := bounded.ReadFile(path, maxProcessSize)
	if err != nil {
		return nil, fmt.Errorf("reading --process: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p specs.Process
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decoding --process %s: %w", path, err)
	}
	return &p, nil
}

// adoptHostRootWrites gives to the container's root what host root wrote
// into its writable layer through ward's overlay since the last time
// (podman cp into the running container, which joins its mount namespace:
// stored as the ID past the block, seen as nobody inside). Every exec
// session passes here, so the session sees the copy as it would under
// runc (userns.Rootfs.AdoptHostRootWrites), and so does delete. A failure
// leaves the entries as they were, for the next exec or create, and does
// not stop the exec or delete.
func (c *ctx) adoptHostRootWrites(rec *Record) {
	l := podmanLayer(rec)
	if l == nil {
		return
	}
	n, err := l.Rootfs.AdoptHostRootWrites(l.Block)
	if err != nil {
		c.log.warn(fmt.Sprintf("ward-runtime: %s: giving host root's writes to the container's root: %v", rec.ID, err))
	}
	if n > 0 {
		c.log.debugf("ward-runtime: %s: %d entries host root wrote given to the container's root", rec.ID, n)
	}
}

// watchLayer has the node's supervisor adopt host root's writes into
// container id's writable layer before the host reads the layer
// (userns.LayerWatch): podman commit, diff and export of a running
// container call no runtime command, so without it a copy with no exec
// after it is committed owned by the ID past the block. The returned
// function stops the watch.
func (c *ctx) watchLayer(id string, w *userns.LayerWatch) func() {
	rec, err := c.records().load(id)
	if err != nil {
		return func() {}
	}
	l := podmanLayer(rec)
	if l == nil {
		return func() {}
	}
	stop, err := w.Add(l.Rootfs, l.Block)
	if err != nil {
		c.log.warn(fmt.Sprintf("ward-runtime: %s: %v (podman cp's copies are given to the container's root at the next exec only)", id, err))
		return func() {}
	}
	return stop
}

// podmanLayer is rec's lease when its writable layer is idmapped and
// Podman manages it, nil otherwise. Only Podman's cp joins the
// container's mount namespace and writes through ward's overlay; Docker's
// writes through its own (docs/userns.md), so a walk would find nothing
// there, and it costs about 3 µs per entry of the writable layer (300 ms
// for 100 000 entries, measured), at every exec, which health checks pay
// every few seconds. A manager that mislabels itself only costs itself
// the walk, or its copies show as nobody until the next create.
func podmanLayer(rec *Record) *admission.Lease {
	l := rec.Userns
	if l == nil || l.Rootfs == nil || l.Rootfs.Layer == "" || rec.Manager != podmanManager {
		return nil
	}
	return l
}
