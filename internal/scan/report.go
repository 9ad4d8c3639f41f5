package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ward-runtime/ward/policy"
)

// Format is an output format of ward scan.
type Format string

const (
	Table        Format = "table"
	JSON         Format = "json"
	SARIF        Format = "sarif"
	JUnit        Format = "junit"
	PolicyReport Format = "policyreport"
)

// Formats lists every format, the default first.
func Formats() []Format { return []Format{Table, JSON, SARIF, JUnit, PolicyReport} }

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(Formats()))
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown format %q (want one of %s)", s, strings.Join(names, ", "))
}

// Report is everything a scan writes: the results under one policy.
type Report struct {
	Policy  *policy.Policy
	Results []Result
	// Skipped counts documents that hold no workload.
	Skipped int
	// Gate is what fails the scan (--fail-on).
	Gate Gate
}

// Write writes r in format f.
func (r *Report) Write(w io.Writer, f Format) error {
	switch f {
	case Table:
		return r.writeTable(w)
	case JSON:
		return writeJSON(w, r.Document())
	case SARIF:
		doc, err := r.SARIF()
		if err != nil {
			return err
		}
		return writeJSON(w, doc)
	case JUnit:
		return r.writeJUnit(w)
	case PolicyReport:
		return writeJSON(w, r.PolicyReport())
	}
	return fmt.Errorf("unknown format %q", f)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// APIVersion and Kind of the JSON document.
const (
	APIVersion = "ward.dev/v1alpha1"
	KindReport = "ScanReport"
)

// Document is the JSON form: stable, fields only ever added.
type Document struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Ward       string   `json:"ward,omitempty"`
	Policy     string   `json:"policy"`
	Mode       string   `json:"mode"`
	Summary    Summary  `json:"summary"`
	Results    []Result `json:"results"`
}

// Summary counts results by action.
type Summary struct {
	Containers int `json:"containers"`
	Objects    int `json:"objects"`
	Harden     int `json:"harden"`
	Sandbox    int `json:"sandbox"`
	Reject     int `json:"reject"`
	Skipped    int `json:"skippedDocuments"`
}

// Document builds the JSON document.
func (r *Report) Document() Document {
	d := Document{APIVersion: APIVersion, Kind: KindReport, Ward: Version(), Policy: r.Policy.Source, Mode: string(r.Policy.Mode),
		Results: r.Results, Summary: r.summary()}
	if d.Results == nil {
		d.Results = []Result{}
	}
	for i := range d.Results {
		if d.Results[i].Findings == nil {
			d.Results[i].Findings = []Finding{}
		}
	}
	return d
}

func (r *Report) summary() Summary {
	s := Summary{Containers: len(r.Results), Skipped: r.Skipped}
	seen := map[string]bool{}
	for _, res := range r.Results {
		key := fmt.Sprintf("%s\x00%d", res.File, res.Line)
		if !seen[key] {
			seen[key] = true
			s.Objects++
		}
		switch res.Action {
		case policy.Harden:
			s.Harden++
		case policy.Sandbox:
			s.Sandbox++
		case policy.Reject:
			s.Reject++
		}
	}
	return s
}

func (r *Report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE:LINE\tOBJECT\tCONTAINER\tACTION\tFINDINGS")
	for _, res := range r.Results {
		action := string(res.Action)
		if res.Action == policy.Sandbox {
			action += " (" + string(res.Backend) + ")"
		}
		if res.Audit {
			action = "audit: " + action
		}
		if res.Refused != "" {
			action += ", refused"
		}
		ctr := res.Container
		if res.Init {
			ctr += " (init)"
		}
		fmt.Fprintf(tw, "%s:%d\t%s\t%s\t%s\t%s\n", res.File, res.Line, objectName(&res), ctr, action, findingList(res.Findings))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	for _, res := range r.Results {
		if res.Action == policy.Harden {
			continue
		}
		fmt.Fprintf(w, "\n%s container %s: %s\n  reason: %s\n", objectName(&res), res.Container, strings.ToUpper(decisionOf(&res)), res.Reason)
		if res.Refused != "" {
			fmt.Fprintf(w, "  %s\n", res.Refused)
		}
		for _, f := range res.Findings {
			if strings.Contains(f.Ward, "rejected") || strings.Contains(f.Ward, "sandboxed") {
				fmt.Fprintf(w, "  %s:%d %s (%s) at %s: %s\n", res.File, f.Line, f.ID, f.Severity, f.Field, f.Detail)
			}
		}
	}
	if n := assumed(r.Results); n != "" {
		fmt.Fprintf(w, "\nassumed where only the node knows (worst case; see --format json): %s\n", n)
	}
	s := r.summary()
	fmt.Fprintf(w, "\n%d objects, %d containers: %d harden, %d sandbox, %d reject (policy %s, %s); %d documents without workloads\n",
		s.Objects, s.Containers, s.Harden, s.Sandbox, s.Reject, r.Policy.Source, r.Policy.Mode, s.Skipped)
	return nil
}

func objectName(r *Result) string {
	n := r.Kind + "/" + r.Name
	if r.Namespace != "" {
		n = r.Namespace + "/" + n
	}
	return n
}

// findingList names the findings worst first, at most five.
func findingList(fs []Finding) string {
	sorted := slices.Clone(fs)
	slices.SortStableFunc(sorted, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	var names []string
	for _, f := range sorted {
		if f.Waived != "" || slices.Contains(names, f.ID) {
			continue
		}
		names = append(names, f.ID)
	}
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("+%d", len(names)-5))
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

// assumed counts the assumptions of all results by ID.
func assumed(rs []Result) string {
	counts := map[string]int{}
	var ids []string
	for _, r := range rs {
		seen := map[string]bool{}
		for _, a := range r.Assumptions {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			if counts[a.ID] == 0 {
				ids = append(ids, a.ID)
			}
			counts[a.ID]++
		}
	}
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%s (%d containers)", id, counts[id]))
	}
	return strings.Join(out, ", ")
}
