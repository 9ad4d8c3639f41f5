package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/policyexport"
	"github.com/ward-runtime/ward/policy"
)

// policyExportCommand is `ward policy export --format
// validatingadmissionpolicy|kyverno [--policy FILE]`: the policy as objects
// the API server (or Kyverno) enforces at admission (docs/admission.md).
func policyExportCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "export --format validatingadmissionpolicy|kyverno",
		Short: "write the policy as a ValidatingAdmissionPolicy (or a Kyverno ClusterPolicy)",
		Args:  cobra.NoArgs,
	}
	format := c.Flags().String("format", "validatingadmissionpolicy", "what to write: validatingadmissionpolicy, or kyverno (a ClusterPolicy with the same CEL)")
	policyPath := policyFlag(c)
	c.RunE = func(*cobra.Command, []string) error {
		if *format != "validatingadmissionpolicy" && *format != "kyverno" {
			return fmt.Errorf("--format: want validatingadmissionpolicy or kyverno, got %q", *format)
		}
		return status(runPolicyExport(env, *format, *policyPath))
	}
	return c
}

func runPolicyExport(env *Env, format, policyPath string) int {
	p, err := policy.Load(policyPath)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	v, err := policyexport.NewExporter(p, manifest.DefaultNode(p)).ValidatingAdmissionPolicy()
	if err != nil {
		return fail(env, ExitError, err)
	}
	fmt.Fprintf(env.Stdout, "# ward policy export from %s: deny what ward rejects on the node, warn for what it sandboxes.\n", p.Source)
	objs := v.Objects()
	if format == "kyverno" {
		objs = []any{v.Kyverno()}
	}
	if err := policyexport.WriteYAML(env.Stdout, objs); err != nil {
		return fail(env, ExitError, err)
	}
	return ExitOK
}
