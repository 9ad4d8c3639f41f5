//go:build !linux

package doctor

import "github.com/ward-runtime/ward/internal/nodeonly"

// NewHostKernel fails: the checks probe a Linux node's kernel.
func NewHostKernel() (Kernel, error) { return nil, nodeonly.New("ward doctor") }
