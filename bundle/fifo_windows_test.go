package bundle

import "errors"

// mkfifo: Windows has no FIFO in the file system (named pipes live under
// \\.\pipe\, where no bundle is).
func mkfifo(string) error { return errors.ErrUnsupported }
