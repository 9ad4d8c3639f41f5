// Command ward-probe runs ward's escape probes inside a container and
// prints one JSON object per probe. With the argument "euid" it prints its
// effective UID and exits: the probes re-execute it that way to test
// setuid escalation, user namespaces and drift.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ward-runtime/ward/integration/escape/probes"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "euid" {
		fmt.Println(os.Geteuid())
		return
	}
	env := probes.EnvFromOS()
	enc := json.NewEncoder(os.Stdout)
	for _, p := range probes.All() {
		if err := enc.Encode(p.Run(env)); err != nil {
			os.Exit(1)
		}
	}
}
