// Package bounded reads files whose size ward does not control (its
// configuration, policies, state records, process specs handed to exec)
// with a limit, so that a huge file, or one with no end at all (a FIFO, a
// device), costs an error that names it instead of memory or a hang.
//
// config.json is read by package bundle, which refuses more (symbolic
// links, OpenNoFollow) because a bundle is a container manager's input,
// not an operator's. OpenNoFollow is the same refusal on every operating
// system: `ward explain` runs on developers' machines too.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrSymlink is what OpenNoFollow's error is (errors.Is) when path is a
// symbolic link.
var ErrSymlink = errors.New("is a symbolic link")

// ReadFile reads the regular file at path, refusing one over max bytes.
// A missing file gives an error for which errors.Is(err, fs.ErrNotExist)
// holds, as os.ReadFile's does.
func ReadFile(path string, max int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
	// refused as not a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit", path, fi.Size(), max)
	}
	// The file may grow after Stat: the limit holds regardless.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is over the %d-byte limit", path, max)
	}
	return data, nil
}
