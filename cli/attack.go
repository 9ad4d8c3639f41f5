package cli

import (
	"encoding/json"
	"fmt"

	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/policyexport"
)

// runAttack implements `ward attack --navigator [--policy FILE]`: an ATT&CK
// Navigator layer of the techniques ward's checks find, scored by what the
// policy does about them.
func runAttack(env *Env, args []string) int {
	fs := newFlagSet(env, "attack", "--navigator [--policy FILE]")
	nav := fs.Bool("navigator", false, "write an ATT&CK Navigator layer (JSON)")
	policyPath := fs.String("policy", "", "node policy file (default: the embedded policy)")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitBadInput
	}
	if len(pos) != 0 || !*nav {
		fs.Usage()
		return ExitBadInput
	}
	p, err := policy.Load(*policyPath)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(policyexport.NavigatorLayer(p)); err != nil {
		return fail(env, ExitError, fmt.Errorf("writing layer: %w", err))
	}
	return ExitOK
}
