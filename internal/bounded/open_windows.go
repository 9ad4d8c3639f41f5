package bounded

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// OpenNoFollow opens path for reading without following a symbolic link
// at its last component (an error wrapping ErrSymlink), as on Linux:
// FILE_FLAG_OPEN_REPARSE_POINT opens a link (or a junction) itself, as
// O_NOFOLLOW does, and the handle's attributes then say whether it is
// one. FILE_FLAG_BACKUP_SEMANTICS lets a directory open, so that callers
// refuse it as not a regular file, as on Linux.
func OpenNoFollow(path string) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil, windows.OPEN_EXISTING,
		windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("%s: %w", path, ErrSymlink)
	}
	return os.NewFile(uintptr(h), path), nil
}
