package policy

import (
	"fmt"

	"github.com/ward-runtime/ward/internal/alert"
)

// Response is what ward does when a container attempts what a detection
// rule covers. Every response raises an alert.
type Response string

const (
	// RespondAlert lets the call through and alerts (audit).
	RespondAlert Response = "alert"
	// RespondDeny refuses the call as ward's baseline always has (EPERM).
	RespondDeny Response = "deny"
	// RespondFreeze refuses the call and freezes the container, with an
	// incident bundle collected while it is frozen.
	RespondFreeze Response = "freeze"
	// RespondKill refuses the call, freezes the container (so that nothing
	// forks away), collects the incident bundle and kills it.
	RespondKill Response = "kill"
)

// AnnotationDrift is the annotation by which a workload asks that every
// drift raise an alert, build artefacts included: the sensor otherwise
// counts a file written only by the image's own toolchain (linker,
// package manager) and then executed as a notice, not an alert
// (docs/sensors.md). Its one value is DriftStrict; like every ward
// annotation it only tightens. Denying drift is Landlock's
// write-xor-execute (ward.dev/landlock: wx).
const AnnotationDrift = "ward.dev/drift"

// DriftStrict is AnnotationDrift's value for "alert on every drift".
const DriftStrict = "strict"

// Detection modes.
const (
	// DetectEnforce answers attempts by their rule's response (deny unless
	// the policy says otherwise).
	DetectEnforce Mode = Enforce
	// DetectAudit lets every attempt through and alerts, except for rules
	// given a response of their own.
	DetectAudit Mode = Audit
)

// Detection is the policy file's detection section: ward's supervisor
// is told of the system calls its seccomp baseline refuses (the escape
// family: mounts, namespaces, module loading, bpf, ...) and answers them
// by rule, raising a Falco-format alert each time (docs/detection.md).
type Detection struct {
	// Enabled sends the baseline's refusals of the rules' system calls
	// to ward's supervisor; without it they are refused silently.
	Enabled Bool `yaml:"enabled"`
	// Mode is enforce (default: each rule's response, deny by default) or
	// audit (alert and let through, except rules with a response here).
	Mode Mode `yaml:"mode"`
	// Responses override the default response per rule.
	Responses []RuleResponse `yaml:"responses"`
}

// RuleResponse sets one rule's response.
type RuleResponse struct {
	// Rule is a detection rule's ID (`ward` docs/detection.md lists them).
	Rule     string   `yaml:"rule"`
	Response Response `yaml:"response"`
}

// Response is what the policy answers an attempt under rule with.
func (d *Detection) Response(rule string) Response {
	for _, r := range d.Responses {
		if r.Rule == rule {
			return r.Response
		}
	}
	if d.Mode == DetectAudit {
		return RespondAlert
	}
	return RespondDeny
}

func (d *Detection) validate() error {
	switch d.Mode {
	case "":
		d.Mode = DetectEnforce
	case DetectEnforce, DetectAudit:
	default:
		return errAt(fmt.Errorf("want enforce or audit, got %q", d.Mode), "detection", "mode")
	}
	seen := map[string]bool{}
	for i, r := range d.Responses {
		if _, ok := alert.Lookup(r.Rule); !ok {
			return errAt(fmt.Errorf("no detection rule %q (docs/detection.md lists them)", r.Rule), "detection", "responses", i, "rule")
		}
		if seen[r.Rule] {
			return errAt(fmt.Errorf("rule %q has a response already", r.Rule), "detection", "responses", i, "rule")
		}
		seen[r.Rule] = true
		switch r.Response {
		case RespondAlert, RespondDeny, RespondFreeze, RespondKill:
		default:
			return errAt(fmt.Errorf("want alert, deny, freeze or kill, got %q", r.Response), "detection", "responses", i, "response")
		}
	}
	return nil
}
