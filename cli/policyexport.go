package cli

import (
	"fmt"

	"github.com/ward-runtime/ward/manifest"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/policyexport"
)

// runPolicyExport implements `ward policy export --format
// validatingadmissionpolicy|kyverno [--policy FILE]`: the policy as objects
// the API server (or Kyverno) enforces at admission.
func runPolicyExport(env *Env, args []string) int {
	fs := newFlagSet(env, "policy export", "--format validatingadmissionpolicy|kyverno [--policy FILE]")
	format := fs.String("format", "validatingadmissionpolicy", "what to write: validatingadmissionpolicy, or kyverno (a ClusterPolicy with the same CEL)")
	policyPath := fs.String("policy", "", "node policy file (default: the embedded policy)")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitBadInput
	}
	if len(pos) != 0 || (*format != "validatingadmissionpolicy" && *format != "kyverno") {
		fs.Usage()
		return ExitBadInput
	}
	p, err := policy.Load(*policyPath)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	v, err := policyexport.NewExporter(p, manifest.DefaultNode(p)).ValidatingAdmissionPolicy()
	if err != nil {
		return fail(env, ExitError, err)
	}
	fmt.Fprintf(env.Stdout, "# ward policy export from %s: deny what ward rejects on the node, warn for what it sandboxes.\n", p.Source)
	objs := v.Objects()
	if *format == "kyverno" {
		objs = []any{v.Kyverno()}
	}
	if err := policyexport.WriteYAML(env.Stdout, objs); err != nil {
		return fail(env, ExitError, err)
	}
	return ExitOK
}
