package wardruntime

import (
	"github.com/ward-runtime/ward/internal/nodeconfig"
)

// loadConfig builds the node configuration from the file, the environment
// and ward-runtime's own global flags, each overriding the one before
// (nodeconfig). Container managers call a runtime with runc's flags only,
// so everything ward-specific comes from there.
func loadConfig(g globals, getenv func(string) string) (nodeconfig.Config, error) {
	return nodeconfig.Load(nodeconfig.Sources{
		File:   g.wardConfig,
		Getenv: getenv,
		Flags: nodeconfig.Overrides{
			Policy: g.wardPolicy, DecisionLog: g.wardDecisionLog, Runc: g.wardRunc, Runsc: g.wardRunsc,
		},
		Legacy: nodeconfig.LegacyRuntimePath,
	})
}
