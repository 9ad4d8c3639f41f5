package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ward-runtime/ward/policy"
)

// writeChecksMarkdown renders the catalog as docs/checks.md. A test keeps
// the committed file equal to this output, so the reference cannot drift
// from the code.
func writeChecksMarkdown(w io.Writer, checks []policy.Check, p *policy.Policy, steps []string) {
	fmt.Fprintln(w, "# ward's checks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every finding ward reports, with the MITRE ATT&CK for Containers techniques and the")
	fmt.Fprintln(w, "benchmark references operators know it by, and what the embedded default policy does")
	fmt.Fprintln(w, "about it. Generated from the code (`go test ./internal/cli -update`); `ward checks` prints the same.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ID | Severity | ATT&CK | Pod Security | CIS Kubernetes | CIS Docker | Kyverno | CVE | Default policy |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, c := range checks {
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.ID, c.Severity, strings.Join(c.Attack, ", "),
			dash(c.Refs.PSS), dash(c.Refs.CISKubernetes), dash(c.Refs.CISDocker), dash(c.Refs.Kyverno), dash(c.Refs.CVE), defaultHandling(c, p, steps))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## What each shape means")
	fmt.Fprintln(w)
	for _, c := range checks {
		fmt.Fprintf(w, "- `%s`: %s.\n", c.ID, c.Summary)
	}
}

// defaultHandling says what the default policy and the steps ward runs
// today do about a check.
func defaultHandling(c policy.Check, p *policy.Policy, steps []string) string {
	for _, r := range p.Rules {
		for _, id := range r.Match.Findings {
			if id == c.ID {
				if r.Action == policy.Sandbox {
					return "sandbox (" + string(r.Backend) + ")"
				}
				return string(r.Action)
			}
		}
	}
	if c.FixedBy != "" && slices.Contains(steps, c.FixedBy) {
		return "harden: " + c.FixedBy
	}
	return "report"
}
