package scan

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/ward-runtime/ward/policy"
)

// JUnit XML as CI systems read it (Jenkins, GitLab, GitHub test
// reporters): one testsuite per manifest file, one testcase per container,
// failed when the gate fails for it. It keeps to the strictest schema in
// use, the Jenkins xUnit plugin's junit-10.xsd (which refuses what it does
// not declare): testsuite requires name, tests, failures and errors, and
// a testcase has no file or line, so the file is the testsuite's and each
// finding's file:line is in the text.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	// Errors is always 0: a manifest ward cannot read fails the whole
	// scan (exit 2) instead of becoming a test case.
	Errors int         `xml:"errors,attr"`
	File   string      `xml:"file,attr"`
	Cases  []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func (r *Report) writeJUnit(w io.Writer) error {
	out := junitSuites{Name: "ward scan"}
	index := map[string]int{}
	for _, res := range r.Results {
		i, ok := index[res.File]
		if !ok {
			i = len(out.Suites)
			index[res.File] = i
			out.Suites = append(out.Suites, junitSuite{Name: res.File, File: res.File})
		}
		c := junitCase{Name: objectName(&res) + " container " + res.Container, ClassName: objectName(&res)}
		var lines []string
		for _, f := range res.Findings {
			lines = append(lines, fmt.Sprintf("%s:%d %s (%s) %s: %s; %s", res.File, f.Line, f.ID, f.Severity, f.Field, f.Detail, f.Ward))
		}
		for _, a := range res.Assumptions {
			lines = append(lines, "assumed "+a.ID+": "+a.Detail)
		}
		text := fmt.Sprintf("%s:%d container %s\ndecision: %s (%s)\n%s", res.File, res.ContainerLine, res.Container, decisionOf(&res), res.Reason, strings.Join(lines, "\n"))
		if why := r.Gate.Fails(&res); why != "" {
			c.Failure = &junitFailure{Message: why, Type: string(res.Action), Text: text}
			out.Suites[i].Failures++
			out.Failures++
		} else {
			c.SystemOut = text
		}
		out.Suites[i].Tests++
		out.Tests++
		out.Suites[i].Cases = append(out.Suites[i].Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Gate is the CI gate of --fail-on: the scan fails when a container is
// rejected, or (with a severity) has an unwaived finding at or above it.
type Gate struct {
	// Reject fails on rejected containers.
	Reject bool
	// Severity, when set, fails on findings at or above it.
	Severity *policy.Severity
}

// ParseGate reads --fail-on: "reject", a severity name, or "none".
func ParseGate(s string) (Gate, error) {
	switch s {
	case "reject":
		return Gate{Reject: true}, nil
	case "none":
		return Gate{}, nil
	}
	sev, err := policy.ParseSeverity(s)
	if err != nil {
		return Gate{}, fmt.Errorf("--fail-on: want reject, none or a severity: %w", err)
	}
	return Gate{Reject: true, Severity: &sev}, nil
}

// Fails says why res fails the gate, or "".
func (g Gate) Fails(res *Result) string {
	if g.Reject && res.Refused != "" {
		return "refused: " + res.Refused
	}
	if g.Reject && res.Rejected() {
		return "rejected: " + res.Reason
	}
	if g.Severity == nil {
		return ""
	}
	for _, f := range res.Findings {
		if f.Waived == "" && f.Severity >= *g.Severity {
			return fmt.Sprintf("finding %s (%s) at or above %s", f.ID, f.Severity, *g.Severity)
		}
	}
	return ""
}

// Failed reports whether any result fails the gate.
func (r *Report) Failed() bool {
	for i := range r.Results {
		if r.Gate.Fails(&r.Results[i]) != "" {
			return true
		}
	}
	return false
}
