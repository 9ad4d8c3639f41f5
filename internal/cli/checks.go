package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/version"
	"github.com/ward-runtime/ward/policy"
)

// checksCommand is `ward checks`: the catalog of findings, with the
// ATT&CK techniques and benchmark references each maps to.
func checksCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "checks [--json]",
		Short: "list every check with its references",
		Args:  cobra.NoArgs,
	}
	asJSON := jsonFlag(c, "the catalog")
	c.RunE = func(*cobra.Command, []string) error { return status(runChecks(env, *asJSON)) }
	return c
}

func runChecks(env *Env, asJSON bool) int {
	p, err := policy.Default()
	if err != nil {
		return fail(env, ExitError, err)
	}
	// Preview: the catalog is listed, nothing is run (off Linux ward's
	// seccomp profile cannot be generated, and listing needs none).
	j, err := judge.New(p, judge.Options{Preview: true})
	if err != nil {
		return fail(env, ExitError, err)
	}
	checks := j.Evaluator().Checks()
	if asJSON {
		type entry struct {
			ID         string            `json:"id"`
			Severity   policy.Severity   `json:"severity"`
			Summary    string            `json:"summary"`
			Attack     []string          `json:"attack"`
			References policy.References `json:"references"`
			// Default is what the embedded policy and today's steps do.
			Default string `json:"default"`
		}
		out := make([]entry, len(checks))
		for i, c := range checks {
			out[i] = entry{c.ID, c.Severity, c.Summary, c.Attack, c.Refs, defaultHandling(c, p, j.Steps())}
		}
		doc := struct {
			WardVersion string  `json:"wardVersion"`
			Checks      []entry `json:"checks"`
		}{version.Version(), out}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fail(env, ExitError, err)
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tATT&CK\tPSS\tCIS K8S\tCIS DOCKER\tKYVERNO\tDEFAULT POLICY")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Severity, strings.Join(c.Attack, ","),
			dash(c.Refs.PSS), dash(c.Refs.CISKubernetes), dash(c.Refs.CISDocker), dash(c.Refs.Kyverno), defaultHandling(c, p, j.Steps()))
	}
	tw.Flush()
	return ExitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
