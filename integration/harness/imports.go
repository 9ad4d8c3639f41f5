package harness

import (
	"fmt"
	"os"
	"strings"
)

// Import makes the running containerd read more configuration files
// through containerd's own `imports` (the way a node's config.toml imports
// /etc/containerd/conf.d/*.toml), then restarts it so that it loads them.
// Patterns are absolute globs. Running shims and containers are left
// alone, as with Restart.
func (c *Containerd) Import(patterns ...string) {
	c.t.Helper()
	data, err := os.ReadFile(c.config)
	if err != nil {
		c.t.Fatalf("reading containerd's config: %v", err)
	}
	quoted := make([]string, len(patterns))
	for i, p := range patterns {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	// A top-level key must come before the first table, so the line goes
	// at the top.
	line := "imports = [" + strings.Join(quoted, ", ") + "]\n"
	if err := os.WriteFile(c.config, append([]byte(line), data...), 0o644); err != nil {
		c.t.Fatalf("writing containerd's config: %v", err)
	}
	c.Restart()
}
