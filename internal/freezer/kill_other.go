//go:build !unix

package freezer

import "github.com/ward-runtime/ward/internal/nodeonly"

// kill fails: a container's processes are a Linux node's.
func kill(int) error { return nodeonly.New("killing a container's processes") }
