package doctor

import (
	"fmt"
	"os"

	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/policy"
)

// checkNodeConfig: the node configuration and the policy it names load, and
// every backend the policy can choose is in the node's table. A running
// shim whose policy file was changed to one that does not load keeps the
// last good policy (docs/shim.md); this check is where the operator sees
// why the change did not take.
func checkNodeConfig(n *Node) []Result {
	r := Result{ID: "ward.config", Title: "node configuration and policy", Ref: "docs/configuration.md"}
	src, source := nodeconfig.Sources{File: n.path(nodeconfig.DefaultPath)}, nodeconfig.DefaultPath
	if _, err := os.Stat(src.File); err != nil {
		src, source = nodeconfig.Sources{File: n.path(nodeconfig.LegacyShimPath)}, nodeconfig.LegacyShimPath+" (deprecated)"
		if _, err := os.Stat(src.File); err != nil {
			src, source = nodeconfig.Sources{}, "no "+nodeconfig.DefaultPath+": the defaults"
		}
	}
	cfg, err := nodeconfig.Load(src)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return []Result{r}
	}
	polPath := cfg.Policy
	if polPath != "" {
		polPath = n.path(polPath)
	}
	p, err := policy.Load(polPath)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: the policy does not load: %v; new containers fail closed (a running shim keeps its last good policy)", source, err)
		return []Result{r}
	}
	table, err := cfg.Table()
	if err == nil {
		err = table.CheckPolicy(p)
	}
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: %v", source, err)
		return []Result{r}
	}
	name := p.Source
	if name == "" {
		name = "the embedded default"
	}
	r.Status, r.Detail = Pass, fmt.Sprintf("%s; policy %s (%s mode); backends %v", source, name, p.Mode, table.Names())
	return []Result{r}
}
