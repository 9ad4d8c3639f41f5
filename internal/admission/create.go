package admission

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Request is one container to admit.
type Request struct {
	// ID is the container's ID.
	ID string
	// BundleDir is the bundle: config.json is read from it and, when the
	// container is hardened, rewritten in it.
	BundleDir string
	// Owner names the container's ID block in the node-wide allocator
	// when it gets one of its own; it must be unique on the node.
	Owner string
	// BlockPerLayer gives the block to the container's writable layer
	// instead, when its root filesystem is already an overlay with one
	// (Docker, Podman): stop and start (delete, then create on the same
	// layer), a daemon restart or a reboot then give it the IDs its files
	// were written with.
	BlockPerLayer bool
	// Rootfs maps the root filesystem for a container that gets ward's
	// user namespace; nil fails such a container closed.
	Rootfs RootfsMapper
	// SandboxPID finds a pod sandbox's process when its record does not
	// have it yet (ward-runtime, which is gone once the sandbox runs);
	// nil when the front door always records it.
	SandboxPID func(sandboxID string) (int, error)
	// Infra reports whether the front door admitted the container named
	// sandboxID as one outside any pod: a Podman pod's infra container,
	// whose spec says nothing of being a sandbox while its pod's members
	// name it as theirs (io.kubernetes.cri-o.SandboxID). Such a member is
	// judged as a container of its own that joins another's namespaces,
	// as a Docker --network container:X is, and it joins the infra
	// container's user namespace (its lease, running as pid), which owns
	// the IPC and UTS namespaces it shares; nil when the door has none.
	Infra func(sandboxID string) (l *Lease, pid int, ok bool)

	// infra is the user namespace of the Podman pod a member joins.
	infra *Lease
}

// Admission is an admitted container: how it is to run.
type Admission struct {
	ID     string
	Bundle *bundle.Bundle
	// Verdict is the decision and what hardening changed.
	Verdict judge.Verdict
	// Runtime is the backend the container runs on (runc in audit mode).
	Runtime backend.Runtime
	// Lease is the container's user namespace; nil without one.
	Lease *Lease
	// Pod is the record of the container's pod (the one Admit wrote for a
	// sandbox); nil outside a pod.
	Pod *PodRecord
	// Entry is the decision-log entry Admit wrote.
	Entry decisionlog.Entry
}

// Sandbox reports whether the container is a pod's sandbox.
func (ad *Admission) Sandbox() bool { return ad.Bundle.Workload.Kind == bundle.Sandbox }

// Undo gives back what Admit took for a container the front door then
// failed to create: its lease and, for a sandbox, its pod record. No delete
// will come for it.
func (a *Admitter) Undo(ad *Admission) error { return a.Forget(ad.ID, ad.Sandbox(), ad.Lease) }

// Forget gives back what a deleted container held: the lease (Release says
// what that holds), and for a sandbox its pod's record.
func (a *Admitter) Forget(id string, sandbox bool, l *Lease) error {
	err := a.Release(l)
	if sandbox {
		err = errors.Join(err, a.pods.Remove(id))
	}
	return err
}

// Admit judges the container in r's bundle and prepares it to run: the
// rewritten config.json, the user-namespace lease, the backend, the pod
// record and the decision-log entry, all written before it returns. An
// error is a *Rejection or an *Error, and the container must not run;
// everything Admit took is given back then.
func (a *Admitter) Admit(r Request) (*Admission, error) {
	start := time.Now()
	entry := decisionlog.Entry{Event: "create", ContainerID: r.ID, Bundle: r.BundleDir}
	ad, err := a.admit(r, &entry)
	if err == nil && ad.Verdict.Action == policy.Reject && !ad.Verdict.Audit {
		err = &Rejection{ContainerID: r.ID, Rule: ad.Verdict.Rule, Reason: ad.Verdict.Reason, Findings: ad.Verdict.Deciding}
	}
	var fe *Error
	if errors.As(err, &fe) {
		entry.Error, entry.ErrorKind = err.Error(), fe.Kind.String()
	}
	entry.DurationSeconds = time.Since(start).Seconds()
	if lerr := a.record(&entry); lerr != nil && err == nil {
		err = &Error{ContainerID: r.ID, Err: lerr}
	}
	if err != nil {
		if ad != nil {
			a.Undo(ad)
		}
		return nil, err
	}
	ad.Entry = entry
	return ad, nil
}

// admit does Admit's work; entry gets the report once there is one.
func (a *Admitter) admit(r Request, entry *decisionlog.Entry) (*Admission, error) {
	fail := func(kind ErrorKind, err error) error { return &Error{Kind: kind, ContainerID: r.ID, Err: err} }
	b, err := bundle.LoadOriginal(r.BundleDir, 0)
	if err != nil {
		return nil, fail(InvalidSpec, err)
	}
	ad := &Admission{ID: r.ID, Bundle: b}
	var pod *PodRecord
	if b.Workload.Kind == bundle.PodContainer {
		pod, err = a.pods.Read(b.Workload.SandboxID)
		if errors.Is(err, ErrNoPod) && r.Infra != nil {
			if l, pid, ok := r.Infra(b.Workload.SandboxID); ok {
				b.Workload.Kind, pod, err = bundle.Standalone, nil, nil
				r.infra = infraOf(l, pid)
			}
		}
		switch {
		case errors.Is(err, ErrNoPod):
			return nil, fail(UnknownPod, fmt.Errorf("ward has no decision for its pod sandbox %s; refusing to run it", b.Workload.SandboxID))
		case err != nil:
			return nil, fail(Failed, err)
		}
	}
	in := policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec), ContainerID: r.ID}
	facts := nodefacts.Options{Node: a.opts.NodeNamespaces}
	if pod != nil {
		if in.Pod, err = pod.context(a.judge.Evaluator()); err != nil {
			return nil, fail(Failed, err)
		}
		ad.Pod = pod
		// A namespace the container joins by path must be its pod's:
		// the sandbox's process says which those are.
		if facts.SandboxPID, err = pod.sandboxPID(r.SandboxPID); err != nil {
			return nil, fail(Failed, err)
		}
	}
	in.Node = nodefacts.Gather(b.Spec, b.Dir, a.policy, facts)
	if ad.Lease, err = a.lease(&r, b, ad.Pod); err != nil {
		return nil, fail(Failed, err)
	}
	if ad.Lease != nil {
		in.Userns = ad.Lease.input()
	}
	var sysctl map[string]string
	if b.Spec.Linux != nil {
		sysctl = maps.Clone(b.Spec.Linux.Sysctl)
	}
	v, err := a.judge.Spec(in)
	if err == nil && usesUserns(&v) {
		err = userns.ApplyMovedNetSysctls(sysctl, b.Spec)
		if err == nil && r.Rootfs == nil {
			err = errors.New("this front door cannot map a root filesystem")
		}
		if err == nil {
			err = r.Rootfs.MapRootfs(b, ad.Lease, &v)
		}
		if err != nil {
			err = fmt.Errorf("user namespace: %w", err)
		}
	}
	if !usesUserns(&v) && ad.Lease != nil {
		// Rejected, sandboxed, audited, exempted, or its manager made one:
		// the block goes back now.
		if rerr := a.Release(ad.Lease); rerr != nil && err == nil {
			err = rerr
		}
		ad.Lease = nil
	}
	ad.Verdict = v
	entry.Report = v.Report(a.policy)
	if err != nil {
		return ad, fail(Failed, fmt.Errorf("hardening the spec: %w", err))
	}
	if v.Action == policy.Reject && !v.Audit {
		return ad, nil
	}
	if err := a.route(ad, &in); err != nil {
		return ad, fail(Failed, err)
	}
	entry.Report.Notes = ad.Verdict.Notes // route may add one
	if ad.Sandbox() {
		pc := v.Decision.PodContext()
		ad.Pod = newPodRecord(pc, r.BundleDir, a.opts.Door, ad.Lease)
		if err := a.pods.Write(ad.Pod); err != nil {
			return ad, fail(Failed, err)
		}
	}
	return ad, nil
}

// route resolves the backend and writes the spec the backend will read.
func (a *Admitter) route(ad *Admission, in *policy.Input) error {
	v, pod := &ad.Verdict, in.Pod
	name := policy.Runc
	if v.Action == policy.Sandbox && !v.Audit {
		name = v.Backend
	}
	rt, err := a.backends.Resolve(name, v.Rule)
	if err != nil {
		return err
	}
	if rt.Shim() && ad.Bundle.Workload.Kind != bundle.Sandbox {
		// A pod decided for a shim backend at its sandbox never reaches
		// ward's task service: Start hands it to that shim. Getting here
		// means a container asked for more than its pod runs in.
		return fmt.Errorf("container needs backend %s (%s), but its pod runs on %s; a pod cannot move to another shim: give the pod the %s runtime class or annotation",
			rt.Name, backend.RuleName(v.Rule), podBackend(pod), rt.Name)
	}
	if rt.Shim() {
		return fmt.Errorf("%s chose backend %s, a containerd shim, which only ward's containerd shim (containerd-shim-ward-v2) can start for a whole pod; refusing to run the container elsewhere",
			backend.RuleName(v.Rule), rt.Name)
	}
	ad.Runtime = rt
	rewrite := v.Rewritten()
	if rt.Sandbox && (pod == nil || pod.Backend != rt.Name) {
		// A sandbox of its own: for a pod's container, because the pod's
		// sandbox runs elsewhere and there is none of this backend to join.
		// It runs in the network namespace the spec names, and must leave
		// alone the addresses of anyone who already lives there.
		switch netnsOf(ad.Bundle.Spec, in) {
		case netnsNode:
			// The policy refuses this (policy.RuleSandboxHostNetwork);
			// getting here means it did not see the node's namespace.
			return fmt.Errorf("container would run in a %s sandbox in the node's network namespace, which ward never does (rule %s)",
				rt.Name, policy.RuleSandboxHostNetwork)
		case netnsJoined:
			var mode string
			ad.Runtime, mode = rt.InJoinedNetns()
			if mode == backend.RunscNetworkHost {
				whose := "another container's"
				if pod != nil {
					whose = "its pod's, whose sandbox runs on " + podBackend(pod)
				}
				v.Notes = append(v.Notes, fmt.Sprintf(judge.NoteOwnSandbox, rt.Name, whose))
			}
		}
		if pod != nil || bundle.WorkloadOf(ad.Bundle.Spec).Kind == bundle.PodContainer {
			// runsc would take it for a container of a sandbox of its
			// own that does not exist (a Podman pod member names its
			// infra container, on runc).
			isolate(ad.Bundle.Spec, ad.ID)
			rewrite = true
		}
	}
	if rewrite {
		if err := bundle.WriteSpec(ad.Bundle); err != nil {
			return fmt.Errorf("writing the hardened spec: %w", err)
		}
	}
	return nil
}

func podBackend(pod *policy.PodContext) string {
	if pod == nil {
		return string(policy.Runc)
	}
	return string(pod.Backend)
}

// How a container's network namespace relates to others on the node.
type netnsUse int

const (
	// netnsOwn: a namespace the container is first to live in (the
	// runtime creates it, or it is only pinned by a bind mount: CNI's,
	// Podman's for a new container).
	netnsOwn netnsUse = iota
	// netnsJoined: a namespace other processes already live in.
	netnsJoined
	// netnsNode: the node's own.
	netnsNode
)

// netnsOf judges, by what it is on the node and never by its spelling, the
// network namespace s runs in. A pod's app container joins its sandbox's
// (the checks refuse any other, namespace-foreign), which the sandbox's
// process lives in. Any other path is resolved to the namespace it
// reaches, and the node says whether some process already lives there. A
// path that reaches no namespace holds nobody's addresses: the runtime
// will fail to join it.
func netnsOf(s *specs.Spec, in *policy.Input) netnsUse {
	if s.Linux == nil {
		return netnsNode
	}
	i := slices.IndexFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	if i < 0 {
		return netnsNode
	}
	p := s.Linux.Namespaces[i].Path
	if p == "" {
		return netnsOwn
	}
	if host, _ := in.Node.HostNamespace(specs.NetworkNamespace, p); host {
		return netnsNode
	}
	if in.Pod != nil {
		return netnsJoined
	}
	var o policy.HostObject
	if in.Node != nil {
		o = in.Node.Objects[p]
	}
	if o.Kind == policy.KindNamespace && nodefacts.Inhabited(specs.NetworkNamespace, o.ID, "") {
		return netnsJoined
	}
	return netnsOwn
}

// isolate turns a pod's app container into the root container of its own
// sandbox: runsc reads the CRI annotations to decide whether to start a
// sandbox or join one, and the pause container's PID, IPC and UTS
// namespaces, named by path, belong to a container it cannot join. The
// network namespace stays, so the pod's IP and ports still work; the
// backend must then leave the namespace's addresses in place
// (backend.Runtime.InJoinedNetns).
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
