// Package version is ward's own version, the same in every binary, every
// JSON document, decision-log entry and doctor report, so that an operator
// can tell which build decided.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// stamped is set at link time by the Makefile (`git describe --tags
// --always --dirty` through -ldflags -X); it is never written at run time.
// A `go build` or `go install` without the Makefile leaves it empty.
var stamped string

// Version is the build's version: the stamped `git describe`, else the
// module version `go install` records (vX.Y.Z), else "devel".
func Version() string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// String is the line every binary prints for --version: its name, ward's
// version and the Go toolchain that built it.
func String(binary string) string {
	return fmt.Sprintf("%s version %s (%s, %s/%s)", binary, Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
