// containerd-shim-ward-v2 is ward's containerd shim: containerd's runc shim
// with ward's policy in front of Create and Exec. See package shim.
package main

import (
	"context"

	"github.com/ward-runtime/ward/internal/shim"
)

func main() {
	shim.Run(context.Background())
}
