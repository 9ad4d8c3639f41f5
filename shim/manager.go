package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	runcmanager "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/nodefacts"
	"github.com/ward-runtime/ward/policy"
)

// Name is the runtime name the shim reports.
const Name = "io.containerd.ward.v2"

// manager is runc's shim manager (start, delete, info) with two changes:
// a pod that the policy sends to Kata is handed to Kata's shim at start,
// and runtimeoptions.v1.Options are translated for runc's code.
type manager struct {
	shim.Shim
	// args are the shim's own command-line arguments, given unchanged to a
	// shim ward delegates to.
	args []string
}

// NewManager returns the manager; args are os.Args[1:].
func NewManager(args []string) shim.Shim {
	return manager{Shim: runcmanager.NewShimManager(Name), args: args}
}

func (m manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	kata, undo, err := kataRoute(params)
	if err != nil {
		return nil, err
	}
	if kata != "" {
		res, err := m.delegateStart(ctx, kata, params)
		if err != nil && undo != nil {
			// No Kata pod came of it: its record would only mislead
			// the next container that names this sandbox.
			undo()
		}
		return res, err
	}
	return m.Shim.Start(ctx, params)
}

func (m manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	// A Kata pod's bundles belong to Kata's shim; so does their cleanup.
	if kata := kataPodShim(); kata != "" {
		return m.delegateStop(ctx, kata)
	}
	st, err := m.Shim.Stop(ctx, id)
	if err == nil {
		// A shim that died (kill -9) never saw its sandbox's Delete:
		// containerd's cleanup of the dead shim is the last chance to
		// give the pod's block back.
		if rerr := releaseStale(id); rerr != nil {
			log.G(ctx).WithError(rerr).Warn("ward: releasing a dead shim's user-namespace IDs")
		}
	}
	return st, err
}

// Info answers for runc's options even when containerd sent the handler's
// table as runtimeoptions.v1.Options, which runc's manager cannot read.
func (m manager) Info(ctx context.Context, r io.Reader) (*types.RuntimeInfo, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxOptionsFile))
	if err != nil {
		return nil, fmt.Errorf("reading runtime options: %w", err)
	}
	if len(data) > 0 {
		var a anypb.Any
		if err := proto.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("decoding runtime options: %w", err)
		}
		if a.MessageIs(&runtimeoptions.Options{}) {
			o, err := DecodeOptions(&a)
			if err != nil {
				return nil, err
			}
			ra, err := typeurl.MarshalAnyToProto(o.Runc)
			if err != nil {
				return nil, err
			}
			if data, err = proto.Marshal(ra); err != nil {
				return nil, err
			}
		}
	}
	return m.Shim.Info(ctx, bytes.NewReader(data))
}

// startOptions finds the handler's options among the bootstrap extensions.
func startOptions(params *bootapi.BootstrapParams) (Options, error) {
	for _, ext := range params.GetExtensions() {
		v := ext.GetValue()
		if v.MessageIs(&runcoptions.Options{}) || v.MessageIs(&runtimeoptions.Options{}) {
			return DecodeOptions(v)
		}
	}
	return Options{Runc: &runcoptions.Options{}}, nil
}

// kataRoute returns the Kata shim's path when the container in the current
// directory (containerd starts the shim in the bundle) belongs to a pod the
// policy sends to Kata, "" otherwise. Kata's shim replaces ward's for the
// whole pod, so this is decided at start, before any task exists. A Kata
// decision whose shim is missing fails closed. For a sandbox it records the
// pod and returns undo, which removes the record again.
func kataRoute(params *bootapi.BootstrapParams) (kata string, undo func(), err error) {
	opts, err := startOptions(params)
	if err != nil {
		return "", nil, err
	}
	path, required := ConfigPath(opts.WardConfig)
	cfg, err := LoadConfig(path, required)
	if err != nil {
		return "", nil, err
	}
	// A policy that cannot choose Kata has no Kata pods: nothing more to
	// read, on the path of every pod's start. The embedded default is such
	// a policy (TestDefaultPolicyCannotChooseKata), so it is not even
	// parsed here. (A pod sent to Kata under an earlier policy gets no new
	// containers once the policy stops naming Kata: ward's own shim refuses
	// them, not knowing the pod.)
	var p *policy.Policy
	if cfg.Policy != "" {
		if p, err = policy.Load(cfg.Policy); err != nil {
			return "", nil, err
		}
	}
	if p == nil || !usesKata(p) {
		return "", nil, nil
	}
	b, err := bundle.Load(".", 0)
	if err != nil {
		// The task's Create reports a broken bundle, with its decision log.
		return "", nil, nil
	}
	if b.Workload.Kind == bundle.PodContainer {
		st, err := readPodState(cfg.PodDir(), b.Workload.SandboxID)
		if err == nil && st.Backend == policy.Kata && st.Action == policy.Sandbox {
			rt, err := cfg.Backends.Resolve(policy.Kata, "")
			if err != nil {
				return "", nil, err
			}
			return rt.Path, nil, nil
		}
		return "", nil, nil
	}
	d := policy.NewEvaluator(p).Evaluate(policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec),
		Node: nodefacts.Gather(b.Spec, b.Dir, p, nodefacts.Options{Node: nodefacts.OwnNamespaces()})})
	if d.Audit || d.Action != policy.Sandbox || d.Backend != policy.Kata {
		return "", nil, nil
	}
	rt, err := cfg.Backends.Resolve(d.Backend, d.Rule)
	if err != nil {
		return "", nil, err
	}
	if b.Workload.Kind != bundle.Sandbox {
		return rt.Path, nil, nil
	}
	// A Kata pod's removal goes to Kata's shim and never reaches ward, so
	// the records of pods whose bundles are gone are dropped here, when
	// the next Kata pod arrives.
	dir, id := cfg.PodDir(), b.Workload.SandboxID
	prunePodStates(dir)
	wd, err := os.Getwd() // containerd starts the shim in the bundle
	if err != nil {
		return "", nil, fmt.Errorf("finding the sandbox bundle: %w", err)
	}
	if err := writePodState(dir, id, wd, d.Action, d.Backend); err != nil {
		return "", nil, err
	}
	return rt.Path, func() { removePodState(dir, id) }, nil
}

// usesKata reports whether any rule can choose Kata; most policies cannot,
// and then start does no evaluation.
func usesKata(p *policy.Policy) bool {
	for _, r := range p.Rules {
		if r.Action == policy.Sandbox && r.Backend == policy.Kata {
			return true
		}
	}
	return false
}

// kataPodShim returns Kata's shim when the bundle in the current directory
// belongs to a pod recorded as running in Kata.
func kataPodShim() string {
	b, err := bundle.Load(".", 0)
	if err != nil || b.Workload.SandboxID == "" {
		return ""
	}
	path, required := ConfigPath("")
	cfg, err := LoadConfig(path, required)
	if err != nil {
		return ""
	}
	st, err := readPodState(cfg.PodDir(), b.Workload.SandboxID)
	if err != nil || st.Backend != policy.Kata {
		return ""
	}
	rt, err := cfg.Backends.Resolve(policy.Kata, "")
	if err != nil {
		return ""
	}
	return rt.Path
}

// delegateStart runs `<kata shim> <same flags> start` with the same
// bootstrap parameters and returns its answer: containerd then talks to
// Kata's shim directly.
func (m manager) delegateStart(ctx context.Context, bin string, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	in, err := proto.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encoding bootstrap params for %s: %w", bin, err)
	}
	out, err := m.delegate(ctx, bin, in)
	if err != nil {
		return nil, err
	}
	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(out, &res); err == nil && res.GetAddress() != "" {
		return &res, nil
	}
	// Shims older than containerd 2.3's protocol print their address.
	addr := strings.TrimSpace(string(out))
	if !strings.Contains(addr, "://") && !strings.HasPrefix(addr, "/") {
		return nil, fmt.Errorf("%s start: unexpected answer %q", bin, out)
	}
	return &bootapi.BootstrapResult{Version: 2, Address: addr, Protocol: "ttrpc"}, nil
}

func (m manager) delegateStop(ctx context.Context, bin string) (shim.StopStatus, error) {
	out, err := m.delegate(ctx, bin, nil)
	if err != nil {
		return shim.StopStatus{}, err
	}
	var res taskAPI.DeleteResponse
	if err := proto.Unmarshal(out, &res); err != nil {
		return shim.StopStatus{}, fmt.Errorf("%s delete: decoding answer: %w", bin, err)
	}
	return shim.StopStatus{Pid: int(res.GetPid()), ExitStatus: int(res.GetExitStatus()), ExitedAt: res.GetExitedAt().AsTime()}, nil
}

// delegate runs bin with the shim's own arguments (which end in the action,
// start or delete) and stdin, and returns its stdout.
func (m manager) delegate(ctx context.Context, bin string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, m.args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("delegating to %s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("delegating to %s: %w", bin, err)
	}
	return out, nil
}
