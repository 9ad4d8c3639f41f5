// Package shim is containerd-shim-ward-v2: containerd's own runc shim, with
// ward's pipeline in front of the two task calls that start code in a
// container. Create judges the container and rewrites its config.json (or
// routes it to gVisor, or refuses it) before runc sees the bundle; Exec
// judges an exec process the same way, so `crictl exec` cannot escape what
// Create decided. Every other call, and everything runc's shim does (I/O,
// exits, OOM events, cgroups, checkpoints), is the runc shim's, unchanged.
//
// One shim serves one pod (containerd groups a pod's containers by the
// io.kubernetes.cri.sandbox-id annotation). The pod's decision is made on
// its sandbox container and carried, in memory, to the pod's app
// containers, which may only tighten it.
package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/backend"
	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/decisionlog"
	"github.com/ward-runtime/ward/judge"
	"github.com/ward-runtime/ward/nodefacts"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/userns"
)

// Service is the task service: runc's, with Create, Exec and Delete
// wrapped. It is safe for concurrent use.
type Service struct {
	// TTRPCTaskService is the runc shim's task service; the methods Service
	// does not override go straight to it.
	taskAPI.TTRPCTaskService

	envs *envCache

	mu sync.Mutex
	// pods maps a sandbox id to the decision its app containers inherit.
	pods map[string]*policy.PodContext
	// sandboxPIDs maps a sandbox id to its init process: a pod's app
	// container must join that process's namespaces.
	sandboxPIDs map[string]uint32
	// nodeNS are the shim's namespaces when it started, the node's.
	nodeNS map[specs.LinuxNamespaceType]policy.ObjectID
	// containers maps a container id to its decision, for Exec.
	containers map[string]*container
	// userns maps a sandbox id (or a pod-less container's) to its user
	// namespace.
	userns map[string]*podUserns

	trim trimmer
}

type container struct {
	decision policy.Decision
	env      *env
	kind     bundle.Kind
}

// NewService wraps inner, runc's task service; decisions are published to
// containerd through p (nil: only logged).
func NewService(inner taskAPI.TTRPCTaskService, p events.Publisher) *Service {
	return &Service{
		TTRPCTaskService: inner,
		envs:             newEnvCache(p),
		pods:             make(map[string]*policy.PodContext),
		sandboxPIDs:      make(map[string]uint32),
		nodeNS:           nodefacts.OwnNamespaces(),
		containers:       make(map[string]*container),
		userns:           make(map[string]*podUserns),
	}
}

// RegisterTTRPC registers Service, not the runc service it wraps.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Close releases the decision logs.
func (s *Service) Close() error { return s.envs.close() }

// Create judges the container, then lets runc's shim create it.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	defer s.trim.touch()
	c, err := s.admit(ctx, r)
	if err != nil {
		s.releaseUserns(ctx, r.ID)
		return nil, errgrpc.ToGRPC(err)
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		s.releaseUserns(ctx, r.ID)
		return nil, err
	}
	s.mu.Lock()
	if pu := s.userns[r.ID]; pu != nil {
		pu.pid = resp.Pid
	}
	s.containers[r.ID] = c
	if c.kind == bundle.Sandbox {
		s.pods[r.ID] = c.decision.PodContext()
		s.sandboxPIDs[r.ID] = resp.Pid
	}
	s.mu.Unlock()
	if c.kind == bundle.Sandbox {
		if err := writePodState(c.env.cfg.PodDir(), r.ID, r.Bundle, c.decision.Action, c.decision.Backend); err != nil {
			log.G(ctx).WithError(err).Warn("ward: recording pod state")
		}
	}
	return resp, nil
}

// Exec judges an exec process against its container's decision.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*types.Empty, error) {
	defer s.trim.touch()
	s.mu.Lock()
	c := s.containers[r.ID]
	s.mu.Unlock()
	if c == nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("ward has no decision for container %s; refusing exec: %w", r.ID, errdefs.ErrFailedPrecondition))
	}
	if r.Spec == nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("exec %s has no process spec: %w", r.ExecID, errdefs.ErrInvalidArgument))
	}
	var p specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &p); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("decoding exec process spec: %v: %w", err, errdefs.ErrInvalidArgument))
	}
	changes, err := c.env.judge.Process(&p, &c.decision)
	e := decisionlog.Entry{Door: "shim", Event: "exec", ContainerID: r.ID + "/" + r.ExecID, Report: reportOf(c)}
	e.Changes = changes
	if err != nil {
		e.Error = err.Error()
	}
	c.env.record(ctx, e)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("ward refused exec in %s: %v: %w", r.ID, err, errdefs.ErrPermissionDenied))
	}
	if len(changes) > 0 {
		data, err := json.Marshal(&p)
		if err != nil {
			return nil, errgrpc.ToGRPC(fmt.Errorf("encoding exec process spec: %w", err))
		}
		r.Spec.Value = data
	}
	return s.TTRPCTaskService.Exec(ctx, r)
}

// Delete forgets a deleted container's decision, and a sandbox's pod.
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	defer s.trim.touch()
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil || r.ExecID != "" {
		return resp, err
	}
	s.mu.Lock()
	c := s.containers[r.ID]
	delete(s.containers, r.ID)
	delete(s.pods, r.ID)
	delete(s.sandboxPIDs, r.ID)
	s.mu.Unlock()
	s.releaseUserns(ctx, r.ID)
	if c != nil && c.decision.Action == policy.Sandbox && c.decision.Backend == policy.GVisor {
		releaseRunscRoots(ctx, c.env.cfg.RunscRoot())
	}
	if c != nil && c.kind == bundle.Sandbox {
		if err := removePodState(c.env.cfg.PodDir(), r.ID); err != nil {
			log.G(ctx).WithError(err).Warn("ward: removing pod state")
		}
	}
	return resp, nil
}

// releaseRunscRoots gives back what runsc keeps mounted in its root (one
// directory per containerd namespace under dir) once its last container
// there is gone, so that a deleted gVisor pod leaves no mount behind.
func releaseRunscRoots(ctx context.Context, dir string) {
	roots, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, root := range roots {
		if _, err := backend.ReleaseRunscRoot(root); err != nil {
			log.G(ctx).WithError(err).Warn("ward: releasing runsc root")
		}
	}
}

// Kill is runc's, except for one message: after a gVisor sandbox has
// exited, runsc answers a kill with "sandbox is not running" where runc says
// "container not running". Only the latter is "already finished" to runc's
// shim code; without this, containerd retries the kill of an exited gVisor
// container forever and the pod cannot be stopped.
func (s *Service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*types.Empty, error) {
	resp, err := s.TTRPCTaskService.Kill(ctx, r)
	if err != nil && strings.Contains(err.Error(), "sandbox is not running") {
		return nil, errgrpc.ToGRPC(fmt.Errorf("process already finished: %w", errdefs.ErrNotFound))
	}
	return resp, err
}

func reportOf(c *container) judge.Report {
	v := judge.Verdict{Decision: c.decision}
	return v.Report(c.env.policy)
}

// admit decides the container and prepares its bundle and options. An
// error means the container must not run.
func (s *Service) admit(ctx context.Context, r *taskAPI.CreateTaskRequest) (*container, error) {
	opts, err := DecodeOptions(r.Options)
	if err != nil {
		return nil, fmt.Errorf("ward: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	env, err := s.envs.get(opts.WardConfig)
	if err != nil {
		return nil, fmt.Errorf("ward cannot judge container %s, refusing to run it: %v: %w", r.ID, err, errdefs.ErrFailedPrecondition)
	}
	b, err := bundle.LoadOriginal(r.Bundle, 0)
	if err != nil {
		env.record(ctx, decisionlog.Entry{Door: "shim", Event: "create", ContainerID: r.ID, Bundle: r.Bundle, Error: err.Error()})
		return nil, fmt.Errorf("ward refused container %s: %v: %w", r.ID, err, errdefs.ErrInvalidArgument)
	}
	in := policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec), ContainerID: r.ID}
	var sandboxPID int
	if b.Workload.Kind == bundle.PodContainer {
		s.mu.Lock()
		in.Pod = s.pods[b.Workload.SandboxID]
		sandboxPID = int(s.sandboxPIDs[b.Workload.SandboxID])
		s.mu.Unlock()
		if in.Pod == nil {
			err := fmt.Errorf("ward has no decision for the pod sandbox %s of container %s; refusing to run it", b.Workload.SandboxID, r.ID)
			env.record(ctx, decisionlog.Entry{Door: "shim", Event: "create", ContainerID: r.ID, Bundle: r.Bundle, Error: err.Error()})
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
		}
	}
	in.Node = nodefacts.Gather(b.Spec, b.Dir, env.policy, nodefacts.Options{SandboxPID: sandboxPID, Node: s.nodeNS})
	in.Userns, err = s.usernsInput(env, b, r.ID)
	if err != nil {
		env.record(ctx, decisionlog.Entry{Door: "shim", Event: "create", ContainerID: r.ID, Bundle: r.Bundle, Error: err.Error()})
		return nil, fmt.Errorf("ward refused container %s (fail closed): %v: %w", r.ID, err, errdefs.ErrFailedPrecondition)
	}
	var sysctl map[string]string
	if b.Spec.Linux != nil {
		sysctl = maps.Clone(b.Spec.Linux.Sysctl)
	}
	v, err := env.judge.Spec(in)
	if err == nil && usesUserns(&v) {
		err = userns.ApplyMovedNetSysctls(sysctl, b.Spec)
	}
	if in.Userns != nil {
		if err == nil && usesUserns(&v) {
			err = s.idmapContainer(r, in.Userns, &v)
		}
		if in.Userns.Join == "" && (err != nil || !usesUserns(&v)) {
			s.releaseUserns(ctx, r.ID)
		}
	}
	c := &container{decision: v.Decision, env: env, kind: b.Workload.Kind}
	entry := decisionlog.Entry{Door: "shim", Event: "create", ContainerID: r.ID, Bundle: r.Bundle, Report: v.Report(env.policy)}
	if err == nil {
		err = s.route(r, b, &v, in.Pod, &opts)
	}
	if err == nil {
		// Always runc options from here on: runc's shim code cannot read
		// runtimeoptions.v1.Options.
		r.Options, err = typeurl.MarshalAnyToProto(opts.Runc)
	}
	if err != nil {
		entry.Error = err.Error()
		env.record(ctx, entry)
		return nil, fmt.Errorf("ward refused container %s (fail closed): %v: %w", r.ID, err, errdefs.ErrFailedPrecondition)
	}
	env.record(ctx, entry)
	if v.Action == policy.Reject && !v.Audit {
		return nil, fmt.Errorf("%s: %w", rejection(r.ID, &entry.Report), errdefs.ErrPermissionDenied)
	}
	return c, nil
}

// route applies the verdict to the bundle and the runc options: a rewritten
// config.json for harden, runsc for gVisor. Audit and reject change nothing.
func (s *Service) route(r *taskAPI.CreateTaskRequest, b *bundle.Bundle, v *judge.Verdict, pod *policy.PodContext, opts *Options) error {
	if v.Audit || v.Action == policy.Reject {
		return nil
	}
	rewrite := v.Rewritten()
	if v.Action == policy.Sandbox {
		env, err := s.envs.get(opts.WardConfig)
		if err != nil {
			return err
		}
		rt, err := env.cfg.Backends.Resolve(v.Backend, v.Rule)
		if err != nil {
			return err
		}
		if rt.Shim {
			// A pod decided for Kata at its sandbox never reaches this
			// service (Manager.Start hands it to Kata's shim). Getting
			// here means a container asked for more than its pod runs in.
			return fmt.Errorf("container needs backend %s (%s), but its pod already runs on %s; a pod cannot move to another shim: give the pod the %s runtime class or annotation",
				v.Backend, ruleName(v.Rule), podBackend(pod), v.Backend)
		}
		bin, err := env.runscBinary(rt)
		if err != nil {
			return err
		}
		opts.Runc.BinaryName = bin
		opts.Runc.Root = env.cfg.RunscRoot()
		if pod != nil && pod.Backend != v.Backend {
			// The pod's sandbox runs on runc, so there is no gVisor
			// sandbox to join: the container gets its own, in the pod's
			// network namespace.
			isolate(b.Spec, r.ID)
			rewrite = true
		}
	}
	if rewrite {
		if err := bundle.WriteSpec(b); err != nil {
			return err
		}
	}
	return nil
}

func ruleName(rule string) string {
	if rule == "" {
		return "the pod's decision"
	}
	return "policy rule " + rule
}

func podBackend(pod *policy.PodContext) string {
	if pod == nil {
		return "runc"
	}
	return string(pod.Backend)
}

// rejection is the message the user sees in crictl and kubelet events: the
// findings the deciding rule matched (all findings when the pod's decision
// decided), the rule and its reason.
func rejection(id string, r *judge.Report) string {
	var decided, all []string
	for _, f := range r.Findings {
		if f.Waived != "" {
			continue
		}
		if strings.HasPrefix(f.Ward, "rejected") && !containsString(decided, f.ID) {
			decided = append(decided, f.ID)
		}
		if !containsString(all, f.ID) {
			all = append(all, f.ID)
		}
	}
	if len(decided) == 0 {
		decided = all
	}
	rule := r.Rule
	if rule == "" {
		rule = "pod decision"
	}
	return fmt.Sprintf("ward rejected container %s: findings [%s]; %s: %s",
		id, strings.Join(decided, ", "), rule, r.Reason)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isolate turns a pod's app container into the root container of its own
// gVisor sandbox: runsc reads the CRI annotations to decide whether to
// start a sandbox or join one, and the pause container's PID, IPC and UTS
// namespaces, named by path, belong to a runc container it cannot join.
// The network namespace stays, so the pod's IP and ports still work.
func isolate(s *specs.Spec, id string) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[bundle.AnnotationContainerType] = "sandbox"
	s.Annotations[bundle.AnnotationSandboxID] = id
	if s.Linux == nil {
		return
	}
	for i := range s.Linux.Namespaces {
		ns := &s.Linux.Namespaces[i]
		if ns.Type != specs.NetworkNamespace {
			ns.Path = ""
		}
	}
}
