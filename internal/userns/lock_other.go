//go:build !unix

package userns

import (
	"os"

	"github.com/ward-runtime/ward/internal/nodeonly"
)

// lockFile: the allocator hands out a node's host IDs; there is none here.
func lockFile(*os.File) error { return nodeonly.New("allocating user namespace IDs") }
