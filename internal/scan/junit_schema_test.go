package scan

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// junitElement is one element of the JUnit schema: its attributes (true:
// required), the elements it may hold, and whether it holds text.
type junitElement struct {
	attrs    map[string]bool
	children []string
	text     bool
}

// junitSchema restates, as data, the JUnit schema of the Jenkins xUnit
// plugin (junit-10.xsd in github.com/jenkinsci/xunit-plugin,
// src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/, read
// at commit 031e285ef3b60dee7aaf36e9096d7dcd95ffae83). It is the strictest
// JUnit schema a CI tool applies: xUnit refuses a report that does not
// validate, where Jenkins' JUnit plugin and GitLab read leniently what
// this schema allows. No Go library validates XML Schema, so the check is
// this table and a token walk (junitValidate).
func junitSchema() map[string]junitElement {
	opt := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			req := strings.HasSuffix(n, "!")
			m[strings.TrimSuffix(n, "!")] = req
		}
		return m
	}
	outcome := junitElement{attrs: opt("type", "message"), text: true}
	rerun := junitElement{attrs: opt("message", "type!"), children: []string{"stackTrace", "system-out", "system-err"}, text: true}
	str := junitElement{text: true}
	return map[string]junitElement{
		"testsuites": {attrs: opt("name", "time", "tests", "failures", "errors"), children: []string{"testsuite"}},
		"testsuite": {attrs: opt("name!", "tests!", "failures!", "errors!", "group", "time", "skipped", "timestamp",
			"hostname", "id", "package", "file", "log", "url"),
			children: []string{"testsuite", "properties", "testcase", "system-out", "system-err"}},
		"properties": {children: []string{"property"}},
		"property":   {attrs: opt("name!", "value!")},
		"testcase": {attrs: opt("name!", "time", "classname", "group"),
			children: []string{"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError", "system-out", "system-err"}},
		"failure": outcome, "error": outcome, "skipped": outcome,
		"rerunFailure": rerun, "rerunError": rerun, "flakyFailure": rerun, "flakyError": rerun,
		"stackTrace": str, "system-out": str, "system-err": str,
	}
}

// surefireTime is the schema's SUREFIRE_TIME, the type of a suite's time.
var surefireTime = regexp.MustCompile(`^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$`)

// junitCounts are the attributes the schema types as strings but every
// CI tool reads as counts.
var junitCounts = []string{"tests", "failures", "errors", "skipped"}

// junitValidate checks a JUnit document against junitSchema with
// testsuites as its root, and that the counts CI tools show add up: each
// suite's tests and failures are its testcases and their failures, the
// root's the sums.
func junitValidate(data []byte) []error {
	schema := junitSchema()
	var errs []error
	fail := func(d *xml.Decoder, format string, args ...any) {
		line, col := d.InputPos()
		errs = append(errs, fmt.Errorf("%d:%d: %s", line, col, fmt.Sprintf(format, args...)))
	}
	type open struct {
		name            string
		attrs           map[string]string
		cases, failures int
	}
	var stack []*open
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return append(errs, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			name := tok.Name.Local
			el, known := schema[name]
			switch {
			case tok.Name.Space != "":
				fail(d, "element %s in namespace %s", name, tok.Name.Space)
			case !known:
				fail(d, "element %s is not in the schema", name)
			case len(stack) == 0 && name != "testsuites":
				fail(d, "root element %s, want testsuites", name)
			case len(stack) > 0 && !slices.Contains(schema[stack[len(stack)-1].name].children, name):
				fail(d, "%s may not hold %s", stack[len(stack)-1].name, name)
			}
			o := &open{name: name, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				if _, ok := el.attrs[a.Name.Local]; !ok || a.Name.Space != "" {
					fail(d, "%s has attribute %s, not in the schema", name, a.Name.Local)
				}
				o.attrs[a.Name.Local] = a.Value
			}
			for a, required := range el.attrs {
				if _, ok := o.attrs[a]; required && !ok {
					fail(d, "%s lacks required attribute %s", name, a)
				}
			}
			for _, a := range junitCounts {
				if v, ok := o.attrs[a]; ok {
					if n, err := strconv.Atoi(v); err != nil || n < 0 {
						fail(d, "%s %s=%q is not a count", name, a, v)
					}
				}
			}
			if v, ok := o.attrs["time"]; ok && (name == "testsuite" || name == "testsuites") && !surefireTime.MatchString(v) {
				fail(d, "%s time=%q", name, v)
			}
			stack = append(stack, o)
		case xml.EndElement:
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				continue
			}
			parent := stack[len(stack)-1]
			switch o.name {
			case "testcase":
				parent.cases++
				parent.failures += o.failures
			case "failure":
				parent.failures = 1
			case "testsuite":
				if strconv.Itoa(o.cases) != o.attrs["tests"] || strconv.Itoa(o.failures) != o.attrs["failures"] {
					fail(d, "testsuite %q says tests=%s failures=%s, holds %d and %d", o.attrs["name"], o.attrs["tests"], o.attrs["failures"], o.cases, o.failures)
				}
				parent.cases += o.cases
				parent.failures += o.failures
			}
		case xml.CharData:
			if len(stack) > 0 && !schema[stack[len(stack)-1].name].text && len(bytes.TrimSpace(tok)) > 0 {
				fail(d, "%s holds text", stack[len(stack)-1].name)
			}
		case xml.Directive:
			fail(d, "directive <!%s>", tok)
		}
	}
	return errs
}

// TestJUnitValidates checks the JUnit report over the whole corpus against
// the xUnit plugin's schema: one testcase per container, failures exactly
// for the rejected ones.
func TestJUnitValidates(t *testing.T) {
	r := scanCorpus(t)
	var b bytes.Buffer
	if err := r.Write(&b, JUnit); err != nil {
		t.Fatal(err)
	}
	for _, err := range junitValidate(b.Bytes()) {
		t.Error(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for _, res := range r.Results {
		if res.Rejected() {
			rejected++
		}
	}
	if got.Tests != len(r.Results) || got.Failures != rejected {
		t.Errorf("tests=%d failures=%d, want %d and %d", got.Tests, got.Failures, len(r.Results), rejected)
	}
	t.Logf("%d testsuites, %d testcases, %d failures: valid against junit-10.xsd", len(got.Suites), got.Tests, got.Failures)
}

// TestJUnitValidatorRefuses proves the check can fail.
func TestJUnitValidatorRefuses(t *testing.T) {
	r := scanDir(t, manifestsDir+"/helm")
	var b bytes.Buffer
	if err := r.Write(&b, JUnit); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	if errs := junitValidate([]byte(good)); len(errs) > 0 {
		t.Fatalf("the unedited report is refused: %v", errs)
	}
	edits := map[string]func(string) string{
		"no errors":         func(s string) string { return strings.Replace(s, ` errors="0" file=`, ` file=`, 1) },
		"testcase file":     func(s string) string { return strings.Replace(s, `<testcase `, `<testcase file="x.yaml" `, 1) },
		"unknown element":   func(s string) string { return strings.Replace(s, `<system-out>`, `<output>`, 1) },
		"count":             func(s string) string { return strings.Replace(s, `tests="3"`, `tests="4"`, 1) },
		"not a count":       func(s string) string { return strings.Replace(s, `failures="0"`, `failures="none"`, 1) },
		"text in testsuite": func(s string) string { return strings.Replace(s, `<testcase `, `stray<testcase `, 1) },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			doc := edit(good)
			if doc == good {
				t.Fatal("the edit changed nothing")
			}
			errs := junitValidate([]byte(doc))
			if len(errs) == 0 {
				t.Error("accepted")
			}
			t.Log(errs)
		})
	}
}
