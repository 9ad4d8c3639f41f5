package doctor

import (
	"io/fs"
	"syscall"
)

// The checks never run on Windows (NewHostKernel fails first: `ward
// doctor` checks a Linux node); these keep the package compiling for the
// ward command's other subcommands.

// groupOf: Windows files have no group ID.
func groupOf(fs.FileInfo) uint32 { return 0 }

// chrootAttr: Windows has no chroot (nil); the caller then reads the
// binary's Go build information instead of running it.
func chrootAttr(string) *syscall.SysProcAttr { return nil }
