package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/ward-runtime/ward/judge"
	"github.com/ward-runtime/ward/policy"
)

// runChecks implements `ward checks`: the catalog of findings, with the
// ATT&CK techniques and benchmark references each maps to.
func runChecks(env *Env, args []string) int {
	fs := newFlagSet(env, "checks", "[--json]")
	asJSON := fs.Bool("json", false, "print the catalog as JSON")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 0 {
		return ExitBadInput
	}
	p, err := policy.Default()
	if err != nil {
		return fail(env, ExitError, err)
	}
	j, err := judge.New(p, judge.Options{})
	if err != nil {
		return fail(env, ExitError, err)
	}
	checks := j.Evaluator().Checks()
	if *asJSON {
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
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
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
