package backend

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// runscNullNetns is the file runsc bind-mounts an empty network namespace
// on, in its --root (the default --shared-root), so that later sandboxes'
// gofers can join it instead of creating one each.
const runscNullNetns = "null-netns"

// ReleaseRunscRoot unmounts the null network namespace runsc pins in root
// once no container is left there (no "*.state" file, runsc's record of a
// container), so that removing the last gVisor container leaves no mount
// behind. It reports whether it unmounted anything.
//
// Racing a runsc create in the same root is harmless: a gofer that finds no
// usable null namespace creates its own, as the first sandbox in a root
// does, and pins it again.
func ReleaseRunscRoot(root string) (bool, error) {
	states, err := filepath.Glob(filepath.Join(root, "*.state"))
	if err != nil {
		return false, fmt.Errorf("listing runsc state in %s: %w", root, err)
	}
	if len(states) > 0 {
		return false, nil
	}
	path := filepath.Join(root, runscNullNetns)
	released := false
	// Concurrent creates can stack several mounts on the path.
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				return released, nil // not (or no longer) a mount point
			}
			return released, fmt.Errorf("unmounting %s: %w", path, err)
		}
		released = true
	}
}
