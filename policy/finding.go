package policy

import (
	"fmt"
	"strings"
)

// Severity orders findings. The zero value is Info.
type Severity int

const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(n, name) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of %s)", name, strings.Join(severityNames[:], ", "))
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// References are the names operators already know a shape by.
type References struct {
	// PSS is the Pod Security Standards check, e.g. "baseline: Host Namespaces".
	PSS string `json:"pss,omitempty"`
	// CISDocker is the CIS Docker Benchmark v1.6 recommendation, e.g. "5.31".
	CISDocker string `json:"cisDocker,omitempty"`
	// CISKubernetes is the CIS Kubernetes Benchmark v1.9 recommendation, e.g. "5.2.3".
	CISKubernetes string `json:"cisKubernetes,omitempty"`
	// Kyverno is the Kyverno policy-library policy that catches the shape.
	Kyverno string `json:"kyverno,omitempty"`
	// CVE is the vulnerability the shape exploits, where there is one.
	CVE string `json:"cve,omitempty"`
}

// Check describes one escape-risk shape that ward looks for. Checks are
// values in a fixed catalog; findings point at them.
type Check struct {
	// ID is stable and kebab-case; policies and logs refer to it.
	ID       string
	Severity Severity
	// Summary says in one line why the shape is a risk.
	Summary string
	// Attack lists MITRE ATT&CK technique IDs (Containers matrix).
	Attack []string
	Refs   References
	// FixedBy names the harden step that removes the shape, or "" when
	// hardening cannot (the policy must reject or sandbox instead).
	FixedBy string
}

// Finding is one occurrence of a check in one spec.
type Finding struct {
	Check *Check
	// Path is the spec field that shows the shape, e.g. "mounts[4].source".
	Path string
	// Detail is what was seen, e.g. "/var/run/docker.sock mounted at /var/run/docker.sock".
	Detail string
	// Pod is true when the finding was carried from the pod's sandbox.
	Pod bool
	// Waived names the exemption that waived this finding, or "".
	Waived string
}

// ID is the check's ID.
func (f Finding) ID() string { return f.Check.ID }
