package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/policy"
)

// policyCommand is `ward policy default` (print the embedded policy, a
// starting point for a node file) and `ward policy check FILE...` (validate
// node files the way every front door will).
func policyCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "print the default policy or validate policy files",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "print the embedded default policy",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := env.Stdout.Write(policy.DefaultYAML())
			return err
		},
	}, &cobra.Command{
		Use:   "check FILE|- ...",
		Short: "validate node policy files (\"-\" reads one from stdin)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			worst := ExitOK
			for _, path := range args {
				worst = worse(worst, checkPolicy(env, path))
			}
			return status(worst)
		},
	}, policyExportCommand(env))
	return c
}

func checkPolicy(env *Env, path string) int {
	var p *policy.Policy
	var err error
	if path == "-" {
		p, err = policy.Read(env.Stdin, "(stdin)")
	} else {
		p, err = policy.LoadFile(path)
	}
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	fmt.Fprintf(env.Stdout, "%s: valid (%s mode, %d rules, %d exemptions)\n", path, p.Mode, len(p.Rules), len(p.Exemptions))
	return ExitOK
}
