//go:build unix

package freezer

import (
	"errors"

	"golang.org/x/sys/unix"
)

// kill sends SIGKILL to pid; one that died meanwhile (ESRCH, possible
// only when not frozen) is not an error.
func kill(pid int) error {
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}
