package shim

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/log"

	"github.com/ward-runtime/ward/internal/supervisor"
)

// newDetect is the pod's supervisor: one socket per shim, named by the
// shim's pid, listened on once the first configuration is loaded.
func newDetect() *supervisor.Door {
	return &supervisor.Door{
		Socket: filepath.Join(supervisor.DefaultDir, fmt.Sprintf("shim-%d.sock", os.Getpid())),
		Log:    log.L.Writer(),
		Logf:   log.L.Warnf,
	}
}
