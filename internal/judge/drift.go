package judge

import (
	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/policy"
)

// Drift is what ward does at run time about drift: a program the
// container writes after it started and then runs (a downloaded tool, a
// dropped binary; Falco's "Drop and execute new binary in container").
// Only a hardened container has one: a rejected container does not run,
// a sandboxed one is held by its sandbox, and an audited one runs as its
// manager made it.
type Drift int

const (
	// DriftNone: the verdict is not a hardened container's.
	DriftNone Drift = iota
	// DriftAlerted: the eBPF sensor raises a `drift` alert; nothing
	// refuses the program (the default: write-xor-execute breaks build
	// jobs, docs/defaults.md).
	DriftAlerted
	// DriftRefused: the container's Landlock ruleset is write-xor-execute
	// (`ward.dev/landlock: wx`): what it writes it cannot execute.
	DriftRefused
	// DriftUnwatched: neither: the policy's detection is off, or the node
	// runs no eBPF sensor (alerts.sensor: false).
	DriftUnwatched
)

// driftOf is what ward does about drift in a container judged v, whose
// hardened spec is the input's.
func (j *Judge) driftOf(v *Verdict, in policy.Input) Drift {
	switch {
	case v.Action != policy.Harden || v.Audit:
		return DriftNone
	case harden.DriftRefused(in.Spec):
		return DriftRefused
	case j.watchDrift:
		return DriftAlerted
	}
	return DriftUnwatched
}

// Handling is Drift in a few words, as the WARD column of `ward explain`
// says what ward does about a finding (the writable-rootfs finding, which
// is what lets drift be dropped and run).
func (d Drift) Handling() string {
	switch d {
	case DriftAlerted:
		return "drift alerted, not refused"
	case DriftRefused:
		return "drift refused (write-xor-execute)"
	case DriftUnwatched:
		return "reported (drift not watched)"
	}
	return ""
}

// Explain says what drift is, what ward does about it in this container
// and how a workload asks for more, for `ward explain`.
func (d Drift) Explain() string {
	const what = "a program the container writes after it starts and then runs (a downloaded tool, a dropped binary)"
	const optIn = "; to refuse it, opt into write-xor-execute with the annotation " + harden.AnnotationLandlock + ": wx (" +
		harden.AnnotationLandlock + ": wx-audit first logs what it would refuse; docs/landlock.md)"
	switch d {
	case DriftAlerted:
		return what + " raises a `drift` alert at run time (ward's eBPF sensor), and is not refused" + optIn +
			"; a program only the image's own linker or package manager wrote is a build artefact, a notice rather than an alert (" +
			policy.AnnotationDrift + ": " + policy.DriftStrict + " alerts on those too; docs/detection.md)"
	case DriftRefused:
		return what + " is refused: the container's Landlock ruleset is write-xor-execute, so nothing it can write can be executed"
	case DriftUnwatched:
		return what + " is neither alerted nor refused: the policy's detection is off, or this node's configuration turns the eBPF sensor off (alerts.sensor: false)" + optIn
	}
	return ""
}
