package cli

import (
	"fmt"

	"github.com/ward-runtime/ward/policy"
)

// runPolicy implements `ward policy default` (print the embedded policy, a
// starting point for a node file) and `ward policy check FILE` (validate a
// node file the way every front door will).
func runPolicy(env *Env, args []string) int {
	if len(args) > 0 && args[0] == "export" {
		return runPolicyExport(env, args[1:])
	}
	fs := newFlagSet(env, "policy", "default | check FILE | export --format validatingadmissionpolicy")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitBadInput
	}
	switch {
	case len(pos) == 1 && pos[0] == "default":
		env.Stdout.Write(policy.DefaultYAML())
		return ExitOK
	case len(pos) == 2 && pos[0] == "check":
		p, err := policy.LoadFile(pos[1])
		if err != nil {
			return fail(env, ExitBadInput, err)
		}
		fmt.Fprintf(env.Stdout, "%s: valid (%s mode, %d rules, %d exemptions)\n", pos[1], p.Mode, len(p.Rules), len(p.Exemptions))
		return ExitOK
	}
	fs.Usage()
	return ExitBadInput
}
