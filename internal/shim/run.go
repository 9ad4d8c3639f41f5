package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/ward-runtime/ward/internal/version"
)

// Run is the shim binary's main: it registers ward's task service, in place
// of runc's, and hands over to containerd's shim runtime, which parses the
// command line and serves containerd. Started through the runsc wrapper
// script, it is the wrapper instead.
func Run(ctx context.Context) {
	if rc, ok := WrapperMode(os.Args[1:]); ok {
		os.Exit(rc)
	}
	if versionAsked(os.Args[1:]) {
		fmt.Println(version.String(filepath.Base(os.Args[0])))
		return
	}
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			sd := ss.(shutdown.Service)
			publisher := pp.(shim.Publisher)
			inner, err := task.NewTaskService(ic.Context, publisher, sd)
			if err != nil {
				return nil, err
			}
			s := NewService(inner, publisher)
			sd.RegisterCallback(func(context.Context) error { return s.Close() })
			return s, nil
		},
	})
	shim.RunShim(ctx, NewManager(os.Args[1:]))
}

// versionAsked reports a lone `-v`/`--version` flag, as an operator types
// it. containerd's shim library would answer it with containerd's own
// version, not ward's; containerd itself never passes it, and its calls
// carry other arguments.
func versionAsked(args []string) bool {
	if len(args) != 1 {
		return false
	}
	switch args[0] {
	case "-v", "--v", "-version", "--version":
		return true
	}
	return false
}
