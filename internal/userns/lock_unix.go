//go:build unix

package userns

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes f's exclusive lock, waiting for it.
func lockFile(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }
