package admission

import (
	"fmt"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/policy"
)

// ShimRoute decides, at `shim start` and before any task exists, whether
// the pod of the container in bundleDir runs on a backend that is a
// containerd shim of its own (Kata): that shim then replaces ward's for the
// whole pod. It returns the shim's runtime, or nil when ward's own shim
// serves the pod. For a sandbox sent to such a shim it writes the pod's
// record, for the pod's later containers, and returns undo, which removes
// it again. A decision for a shim that is not installed fails closed.
//
// It is on the path of every pod's start, so it reads as little as it can:
// a policy that cannot choose a shim backend has no such pods, and the
// embedded default is such a policy, so it is not even parsed.
func ShimRoute(cfg nodeconfig.Config, bundleDir string) (rt *backend.Runtime, undo func(), err error) {
	if cfg.Policy == "" {
		return nil, nil, nil
	}
	p, err := policy.Load(cfg.Policy)
	if err != nil {
		return nil, nil, fmt.Errorf("loading policy: %w", err)
	}
	table, err := cfg.Table()
	if err != nil {
		return nil, nil, err
	}
	if !table.UsesKind(p, backend.ContainerdShim) {
		return nil, nil, nil
	}
	b, err := bundle.Load(bundleDir, 0)
	if err != nil {
		// The task's Create reports a broken bundle, with its decision log.
		return nil, nil, nil
	}
	pods := PodStore{Dir: cfg.PodDir()}
	if b.Workload.Kind == bundle.PodContainer {
		r, err := PodShim(cfg, b.Workload.SandboxID)
		return r, nil, err
	}
	d := policy.NewEvaluator(p).Evaluate(policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec),
		Node: nodefacts.Gather(b.Spec, b.Dir, p, nodefacts.Options{})})
	if d.Audit || d.Action != policy.Sandbox || table[d.Backend].Kind != backend.ContainerdShim {
		return nil, nil, nil
	}
	resolved, err := table.Resolve(d.Backend, d.Rule)
	if err != nil {
		return nil, nil, err
	}
	if b.Workload.Kind != bundle.Sandbox {
		return &resolved, nil, nil
	}
	// Such a pod's removal goes to its own shim and never reaches ward, so
	// the records of pods whose bundles are gone are dropped here, when the
	// next one arrives.
	pods.Prune()
	id := b.Workload.SandboxID
	if err := pods.Write(newPodRecord(d.PodContext(), bundleDir, DoorShim, nil)); err != nil {
		return nil, nil, err
	}
	return &resolved, func() { pods.Remove(id) }, nil
}

// PodShim returns the shim backend the pod whose sandbox is sandboxID runs
// on, or nil when the pod is not recorded as running on one.
func PodShim(cfg nodeconfig.Config, sandboxID string) (*backend.Runtime, error) {
	r, err := (PodStore{Dir: cfg.PodDir()}).Read(sandboxID)
	if err != nil || r.Action != policy.Sandbox {
		return nil, nil
	}
	table, err := cfg.Table()
	if err != nil {
		return nil, err
	}
	if table[r.Backend].Kind != backend.ContainerdShim {
		return nil, nil
	}
	rt, err := table.Resolve(r.Backend, "")
	if err != nil {
		return nil, err
	}
	return &rt, nil
}
