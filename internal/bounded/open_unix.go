//go:build unix

package bounded

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenNoFollow opens path for reading without following a symbolic link
// at its last component (an error wrapping ErrSymlink) and without waiting
// for a FIFO's writer.
func OpenNoFollow(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s: %w", path, ErrSymlink)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
