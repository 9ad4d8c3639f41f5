// Command ward explains and applies ward's decisions from the command line.
// See `ward help`.
package main

import (
	"os"

	"github.com/ward-runtime/ward/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
