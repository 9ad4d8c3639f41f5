package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/policyexport"
	"github.com/ward-runtime/ward/policy"
)

// attackCommand is `ward attack --navigator [--policy FILE]`: an ATT&CK
// Navigator layer of the techniques ward's checks find, scored by what the
// policy does about them.
func attackCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "attack --navigator",
		Short: "write an ATT&CK Navigator layer of what ward covers",
		Args:  cobra.NoArgs,
	}
	nav := c.Flags().Bool("navigator", false, "write an ATT&CK Navigator layer (JSON)")
	c.MarkFlagRequired("navigator")
	policyPath := policyFlag(c)
	c.RunE = func(*cobra.Command, []string) error {
		if !*nav {
			return fmt.Errorf("--navigator is the only layer ward writes")
		}
		return status(runAttack(env, *policyPath))
	}
	return c
}

func runAttack(env *Env, policyPath string) int {
	p, err := policy.Load(policyPath)
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
