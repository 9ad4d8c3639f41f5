// Command ward-runtime is an OCI runtime with runc's command line: it
// judges every container with ward's policy, then runs it hardened on runc,
// sandboxed on gVisor, or not at all. See package runtime.
package main

import (
	"os"

	"github.com/ward-runtime/ward/internal/wardruntime"
)

func main() {
	os.Exit(wardruntime.Run(os.Args[1:]))
}
