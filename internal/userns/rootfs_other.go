//go:build !linux

package userns

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/nodeonly"
)

// The front doors' user namespace work needs a Linux node: admission
// builds no front door off Linux, so these only keep its code compiling
// for `ward explain`, and fail if reached.

// WritableLayer fails: overlay mounts are a Linux node's.
func WritableLayer(string) (string, error) {
	return "", nodeonly.New("finding a container's writable layer")
}

// Release fails: nothing was mounted here.
func (rf *Rootfs) Release() error {
	return nodeonly.New("releasing a container's idmapped root filesystem")
}

// UnchownTree fails: it gives a node's files back.
func UnchownTree(string, Range) (int, error) {
	return 0, nodeonly.New("giving a writable layer's files back")
}

// ApplyMovedNetSysctls fails: sysctls are a Linux node's.
func ApplyMovedNetSysctls(map[string]string, *specs.Spec) error {
	return nodeonly.New("setting a container's network sysctls")
}
