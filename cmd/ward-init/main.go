// Command ward-init is ward's Landlock launcher. ward bind-mounts it into
// containers and prepends it to their processes; it restricts itself to the
// container's Landlock ruleset and then executes the real entrypoint in its
// place. See docs/landlock.md.
package main

import (
	"os"

	"github.com/ward-runtime/ward/landlock"
)

func main() {
	os.Exit(landlock.Launch(os.Args, os.Environ(), os.Stderr))
}
