package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/version"
	"github.com/ward-runtime/ward/policy"
)

// explainCommand is `ward explain PATH...`: load bundles or specs, judge
// them, and print the findings, the decision and (with --diff) the rewrite.
func explainCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "explain [flags] BUNDLE|SPEC|- ...",
		Short: "judge bundles or specs and explain the decision",
		Long: "Judge each bundle directory or spec file (\"-\" reads a spec from stdin) and print its findings,\n" +
			"the decision and why. A pod's app container needs its pod's sandbox spec (--pod): host\n" +
			"namespaces and sysctls show only there. The exit status is the worst of all inputs.",
		Example: "  ward explain testdata/corpus/cri-ordinary/container.json --pod testdata/corpus/cri-ordinary/sandbox.json\n" +
			"  ward explain --json --diff bundle/\n  crictl inspect -o json ID | jq .info.runtimeSpec | ward explain -",
		Args: cobra.MinimumNArgs(1),
	}
	asJSON := jsonFlag(c, "one decision document per input")
	diff := c.Flags().Bool("diff", false, "show the spec before and after hardening")
	o := podFlags(c)
	policyPath := policyFlag(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		p, err := policy.Load(*policyPath)
		if err != nil {
			return status(fail(env, ExitBadInput, err))
		}
		worst := ExitOK
		for i, path := range args {
			if i > 0 && !*asJSON {
				fmt.Fprintln(env.Stdout)
			}
			worst = worse(worst, explainOne(env, path, p, *o, *asJSON, *diff))
		}
		return status(worst)
	}
	return c
}

// Document is what `ward explain --json` prints per input.
type Document struct {
	WardVersion string `json:"wardVersion"`
	// Source is the file judged, as given ("-" is "(stdin)").
	Source string `json:"source"`
	judge.Report
}

func explainOne(env *Env, path string, p *policy.Policy, o judgeOptions, asJSON, diff bool) int {
	t, st, err := judgeFile(env, path, p, o, true)
	if err != nil {
		return fail(env, st, err)
	}
	report := t.verdict.Report(t.policy)
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(Document{WardVersion: version.Version(), Source: t.bundle.ConfigPath, Report: report}); err != nil {
			return fail(env, ExitError, fmt.Errorf("writing report: %w", err))
		}
	} else {
		printExplanation(env.Stdout, path, &report, t.policy, t.verdict.Drift)
	}
	if diff {
		after, err := specJSON(t.bundle.Spec)
		if err != nil {
			return fail(env, ExitError, err)
		}
		w := env.Stdout
		if asJSON {
			w = env.Stderr
		}
		fmt.Fprintln(w)
		writeDiff(w, "original", "hardened", string(t.before), string(after))
	}
	return exitFor(&t.verdict)
}

func printExplanation(w io.Writer, name string, r *judge.Report, p *policy.Policy, drift judge.Drift) {
	fmt.Fprintf(w, "%s\n", name)
	wl := r.Workload
	switch {
	case wl.Pod != "" || wl.Namespace != "":
		fmt.Fprintf(w, "  workload: %s %s/%s", wl.Kind, wl.Namespace, wl.Pod)
		if wl.Container != "" {
			fmt.Fprintf(w, " container %s", wl.Container)
		}
		if wl.Image != "" {
			fmt.Fprintf(w, " image %s", wl.Image)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "  workload: %s\n", wl.Kind)
	}
	fmt.Fprintf(w, "  policy:   %s (%s)\n\n", r.Policy, p.Mode)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINDING\tSEVERITY\tATT&CK\tREFERENCE\tWARD")
	for _, f := range r.Findings {
		id := f.ID
		if f.FromPod {
			id += " (pod)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, f.Severity, strings.Join(f.Attack, ","), primaryRef(f.References), f.Ward)
	}
	tw.Flush()
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "(no findings)")
	}

	fmt.Fprintln(w, "\nWHERE")
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %-28s %s: %s\n", f.ID, f.Path, f.Detail)
		if refs := allRefs(f.References); refs != "" {
			fmt.Fprintf(w, "  %-28s %s\n", "", refs)
		}
	}

	fmt.Fprintln(w)
	verb := strings.ToUpper(string(r.Action))
	if r.Action == policy.Sandbox {
		verb += " (" + string(r.Backend) + ")"
	}
	if r.Audit {
		verb = "AUDIT: would " + verb + "; the container runs unchanged"
	}
	fmt.Fprintf(w, "DECISION: %s\n  reason: %s\n", verb, r.Reason)
	if r.Rule != "" {
		fmt.Fprintf(w, "  rule:   %s", r.Rule)
		if len(r.Matched) > 1 {
			fmt.Fprintf(w, " (matched: %s)", strings.Join(r.Matched, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, x := range r.Exemptions {
		fmt.Fprintf(w, "  exemption %s: %s", x.Name, x.Reason)
		if len(x.Waive) > 0 {
			fmt.Fprintf(w, " [waives %s]", strings.Join(x.Waive, ", "))
		}
		if len(x.Skip) > 0 {
			fmt.Fprintf(w, " [skips %s]", strings.Join(x.Skip, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note:   %s\n", n)
	}
	if d := drift.Explain(); d != "" {
		fmt.Fprintf(w, "  drift:  %s\n", d)
	}
	if len(r.Changes) > 0 {
		fmt.Fprintln(w, "  changes:")
		for _, c := range r.Changes {
			fmt.Fprintf(w, "    %-18s %s: %s\n", c.Step, c.Path, c.Detail)
		}
	}
}

// primaryRef is the one reference shown in the table: the name operators
// of the container's likely platform know best.
func primaryRef(r policy.References) string {
	switch {
	case r.PSS != "":
		return "PSS " + r.PSS
	case r.CISKubernetes != "":
		return "CIS K8s " + r.CISKubernetes
	case r.CISDocker != "":
		return "CIS Docker " + r.CISDocker
	case r.CVE != "":
		return r.CVE
	case r.Kyverno != "":
		return "Kyverno " + r.Kyverno
	}
	return "-"
}

func allRefs(r policy.References) string {
	var cisK8s, cisDocker, kyverno string
	if r.CISKubernetes != "" {
		cisK8s = "CIS K8s " + r.CISKubernetes
	}
	if r.CISDocker != "" {
		cisDocker = "CIS Docker " + r.CISDocker
	}
	if r.Kyverno != "" {
		kyverno = "Kyverno " + r.Kyverno
	}
	return joinNonEmpty("; ", cisK8s, cisDocker, kyverno, r.CVE)
}
