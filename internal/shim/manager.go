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
	"github.com/ward-runtime/ward/internal/admission"
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
	other, undo, err := shimRoute(params)
	if err != nil {
		return nil, err
	}
	if other != "" {
		res, err := m.delegateStart(ctx, other, params)
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
	if other := podShim(); other != "" {
		return m.delegateStop(ctx, other)
	}
	st, err := m.Shim.Stop(ctx, id)
	if err == nil {
		// A shim that died (kill -9) never saw its sandbox's Delete:
		// containerd's cleanup of the dead shim is the last chance to
		// give the pod's block and record back.
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

// shimRoute returns the path of the containerd shim that is to serve the
// pod of the container in the current directory (containerd starts the
// shim in the bundle) instead of ward's, "" when ward's serves it; the
// decision is admission.ShimRoute's. For a sandbox it returns undo, which
// removes the pod record again.
func shimRoute(params *bootapi.BootstrapParams) (string, func(), error) {
	opts, err := startOptions(params)
	if err != nil {
		return "", nil, err
	}
	cfg, err := loadConfig(opts.WardConfig)
	if err != nil {
		return "", nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", nil, fmt.Errorf("finding the bundle: %w", err)
	}
	rt, undo, err := admission.ShimRoute(cfg, wd)
	if err != nil || rt == nil {
		return "", nil, err
	}
	return rt.Path, undo, nil
}

// podShim returns the shim that serves the pod of the bundle in the
// current directory when it is not ward's, "" otherwise.
func podShim() string {
	b, err := bundle.Load(".", 0)
	if err != nil || b.Workload.SandboxID == "" {
		return ""
	}
	cfg, err := loadConfig("")
	if err != nil {
		return ""
	}
	rt, err := admission.PodShim(cfg, b.Workload.SandboxID)
	if err != nil || rt == nil {
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
