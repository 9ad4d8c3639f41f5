package runtime

import (
	"fmt"

	"github.com/ward-runtime/ward/version"
)

// runVersion implements `--version`: runc's version lines, which callers
// parse (docker info, podman info), so they come from the backend. ward's
// own line comes first and holds no "version" word: Docker's parser takes
// the last line that does, which stays runc's.
func runVersion(c *ctx) error {
	fmt.Fprintf(c.env.Stdout, "ward-runtime: %s\n", version.Version())
	t := c.defaultTarget()
	argv := []string{t.path, "--version"}
	if err := c.env.Exec(t.path, argv, c.env.Environ); err != nil {
		return err
	}
	return nil
}
