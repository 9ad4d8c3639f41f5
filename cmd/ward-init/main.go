// Command ward-init is ward's Landlock launcher. ward bind-mounts it into
// containers and prepends it to their processes; it restricts itself to the
// container's Landlock ruleset and then executes the real entrypoint in its
// place. See docs/landlock.md.
package main

import (
	"fmt"
	"os"

	"github.com/ward-runtime/ward/internal/landlock"
	"github.com/ward-runtime/ward/internal/version"
)

func main() {
	// Only the host's copy answers --version: inside a container the
	// launcher runs as landlock.LauncherPath, and its arguments are the
	// workload's, passed on untouched.
	if len(os.Args) == 2 && os.Args[1] == "--version" && os.Args[0] != landlock.LauncherPath {
		fmt.Println(version.String("ward-init"))
		return
	}
	os.Exit(landlock.Launch(os.Args, os.Environ(), os.Stderr))
}
