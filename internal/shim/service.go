// Package shim is containerd-shim-ward-v2: containerd's own runc shim, with
// ward's pipeline in front of the two task calls that start code in a
// container. Create judges the container and rewrites its config.json (or
// routes it to gVisor, or refuses it) before runc sees the bundle; Exec
// judges an exec process the same way, so `crictl exec` cannot escape what
// Create decided. Every other call, and everything runc's shim does (I/O,
// exits, OOM events, cgroups, checkpoints), is the runc shim's, unchanged.
//
// One shim serves one pod (containerd groups a pod's containers by the
// io.kubernetes.cri.sandbox-id annotation). The decisions are the admission
// package's: the shim holds only the transport (the task API and runc's
// options). The pod's decision is made on its sandbox container and
// carried, through the node's pod records (admission.PodStore), to the
// pod's app containers, which may only tighten it.
package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/internal/supervisor"
	"github.com/ward-runtime/ward/policy"
)

// Service is the task service: runc's, with Create, Exec and Delete
// wrapped. It is safe for concurrent use.
type Service struct {
	// TTRPCTaskService is the runc shim's task service; the methods Service
	// does not override go straight to it.
	taskAPI.TTRPCTaskService

	admitters *admitters

	mu sync.Mutex
	// containers maps a container id to what ward keeps of its admission,
	// for Exec, Kill and Delete.
	containers map[string]*container

	trim trimmer
}

// container is what the shim keeps of an admitted container.
type container struct {
	adm     *admission.Admitter
	report  judge.Report
	bundle  string
	sandbox bool
	runtime backend.Runtime
	lease   *admission.Lease
}

// NewService wraps inner, runc's task service; decisions are published to
// containerd through p (nil: only logged).
func NewService(inner taskAPI.TTRPCTaskService, p events.Publisher) *Service {
	return &Service{
		TTRPCTaskService: inner,
		// The node's namespaces, taken before any thread of the shim
		// enters a pod's (nodefacts.OwnNamespaces).
		admitters:  newAdmitters(p, nodefacts.OwnNamespaces()),
		containers: make(map[string]*container),
	}
}

// RegisterTTRPC registers Service, not the runc service it wraps.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Close releases the decision logs.
func (s *Service) Close() error { return s.admitters.close() }

// Create judges the container, then lets runc's shim create it.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	defer s.trim.touch()
	opts, err := DecodeOptions(r.Options)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("ward: %v: %w", err, errdefs.ErrInvalidArgument))
	}
	adm, err := s.admitters.get(ctx, opts.WardConfig)
	if err != nil {
		return nil, errgrpc.ToGRPC(grpcClass(admission.Unjudged(r.ID, false, err)))
	}
	ad, err := adm.Admit(admission.Request{
		ID: r.ID, BundleDir: r.Bundle, Owner: usernsOwner(r.ID),
		Rootfs: shimRootfs{r},
	})
	if err != nil {
		return nil, errgrpc.ToGRPC(grpcClass(err))
	}
	if err := s.transport(r, &opts, adm, ad); err != nil {
		adm.Undo(ad)
		return nil, errgrpc.ToGRPC(fmt.Errorf("ward refused container %s (fail closed): %v: %w", r.ID, err, errdefs.ErrFailedPrecondition))
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		adm.Undo(ad)
		return nil, err
	}
	if ad.Sandbox() {
		if err := adm.Pods().SetSandboxPID(r.ID, int(resp.Pid)); err != nil {
			log.G(ctx).WithError(err).Warn("ward: recording the sandbox's pid")
		}
	}
	s.admitters.detect.Add(supervisor.ContainerOf(ad, adm, int(resp.Pid)))
	s.mu.Lock()
	s.containers[r.ID] = &container{adm: adm, report: ad.Entry.Report, bundle: r.Bundle, sandbox: ad.Sandbox(), runtime: ad.Runtime, lease: ad.Lease}
	s.mu.Unlock()
	return resp, nil
}

// transport puts the admission into the task request: runc options naming
// the backend's binary and state root when the container does not run on
// the handler's own runc. Always runc options from here on: runc's shim
// code cannot read runtimeoptions.v1.Options.
func (s *Service) transport(r *taskAPI.CreateTaskRequest, opts *Options, adm *admission.Admitter, ad *admission.Admission) error {
	if ad.Runtime.Name != policy.Runc {
		stateDir := adm.Config().StateDir
		bin, err := runtimeBinary(stateDir, ad.Runtime)
		if err != nil {
			return err
		}
		opts.Runc.BinaryName = bin
		opts.Runc.Root = runtimeRoot(stateDir, ad.Runtime)
	}
	var err error
	r.Options, err = typeurl.MarshalAnyToProto(opts.Runc)
	return err
}

// grpcClass gives an admission error containerd's error class.
func grpcClass(err error) error {
	var fe *admission.Error
	switch {
	case admission.IsRejection(err):
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
	case errors.As(err, &fe) && fe.Kind == admission.InvalidSpec:
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	case errors.As(err, &fe) && fe.Kind == admission.Forbidden:
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
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
	changes, err := c.adm.AdmitExec(admission.ExecRequest{ID: r.ID, ExecID: r.ExecID, Bundle: c.bundle, Process: &p, Container: c.report})
	if err != nil {
		return nil, errgrpc.ToGRPC(grpcClass(err))
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
	s.mu.Unlock()
	if c == nil {
		return resp, nil
	}
	s.admitters.detect.Remove(r.ID)
	if err := c.adm.Forget(r.ID, c.sandbox, c.lease); err != nil {
		log.G(ctx).WithError(err).Warn("ward: forgetting the container")
	}
	if c.runtime.Runsc() {
		releaseRunscRoots(ctx, runtimeRoot(c.adm.Config().StateDir, c.runtime))
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
