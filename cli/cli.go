// Package cli implements the ward command: explain, harden, checks and
// policy. Each subcommand lives in its own file and is listed once, in
// commands(); cmd/ward only calls Main.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/judge"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/userns"
)

// Exit statuses. Scripts and CI branch on these; they never change.
const (
	// ExitOK: the container may run (hardened, sandboxed, or audit mode).
	ExitOK = 0
	// ExitError: ward itself failed.
	ExitError = 1
	// ExitBadInput: bad usage, or the spec or policy is invalid.
	ExitBadInput = 2
	// ExitRejected: the policy rejects the container.
	ExitRejected = 3
	// ExitCheckFailed: `ward doctor` found a FAIL.
	ExitCheckFailed = 4
)

// command is one subcommand.
type command struct {
	name     string
	synopsis string
	run      func(env *Env, args []string) int
}

func commands() []command {
	return []command{
		{"explain", "judge a bundle or spec and explain the decision", runExplain},
		{"harden", "write the spec ward would run", runHarden},
		{"scan", "judge Kubernetes manifests as the node would, for CI", runScan},
		{"attack", "write an ATT&CK Navigator layer of what ward covers", runAttack},
		{"checks", "list every check with its references", runChecks},
		{"policy", "print the default policy or validate a policy file", runPolicy},
		{"doctor", "check this node's kernel, runtimes and container manager", runDoctor},
		{"install", "put ward on this node: binaries, config, policy, containerd handlers", runInstall},
		{"uninstall", "revert exactly what ward install wrote", runUninstall},
	}
}

// Env is what a subcommand may touch.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
}

// Main runs ward with args (without the program name) and returns the exit
// status.
func Main(args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdout: stdout, Stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return ExitBadInput
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(env, args[1:])
		}
	}
	fmt.Fprintf(stderr, "ward: unknown command %q (see ward help)\n", args[0])
	return ExitBadInput
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ward: judge containers by their OCI spec; harden, sandbox or reject them.")
	fmt.Fprintln(w, "\nUsage: ward COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintf(w, "\nExit status: %d may run, %d rejected, %d bad usage or input, %d ward failed; doctor: %d on a FAIL.\n",
		ExitOK, ExitRejected, ExitBadInput, ExitError, ExitCheckFailed)
}

// parse parses flags that may come before or after the positional
// arguments (`ward explain spec.json --json`), and returns the positionals.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func newFlagSet(env *Env, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: ward %s %s\n\nFlags:\n", name, usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// target is a judged container, as explain and harden share it.
type target struct {
	bundle  *bundle.Bundle
	verdict judge.Verdict
	policy  *policy.Policy
	// before is the spec as loaded, pretty-printed, for --diff.
	before []byte
}

// judgeFile loads the spec at path (and the pod's sandbox spec, if given)
// and judges it under the policy at policyPath.
func judgeFile(path, podPath, policyPath string) (*target, int, error) {
	p, err := policy.Load(policyPath)
	if err != nil {
		return nil, ExitBadInput, err
	}
	j, err := judge.New(p, judge.Options{Launcher: judge.Launcher(), UsernsPool: explainPool(p)})
	if err != nil {
		return nil, ExitError, err
	}
	// A bundle a front door has hardened holds ward's rewrite: judge the
	// caller's original kept beside it, as the next create would.
	b, err := bundle.LoadOriginal(path, 0)
	if err != nil {
		return nil, ExitBadInput, err
	}
	before, err := specJSON(b.Spec)
	if err != nil {
		return nil, ExitError, err
	}
	in := policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec), Userns: explainUserns(b.Workload)}
	if podPath != "" {
		sb, err := bundle.Load(podPath, 0)
		if err != nil {
			return nil, ExitBadInput, fmt.Errorf("loading the pod's sandbox spec: %w", err)
		}
		if sb.Workload.Kind != bundle.Sandbox {
			return nil, ExitBadInput, fmt.Errorf("%s is not a pod sandbox spec (annotation %s is %q)",
				podPath, bundle.AnnotationContainerType, sb.Spec.Annotations[bundle.AnnotationContainerType])
		}
		sd := j.Evaluator().Evaluate(policy.Input{Spec: sb.Spec, Workload: sb.Workload, HostPaths: bundle.HostPaths(sb.Spec)})
		in.Pod = sd.PodContext()
	}
	v, err := j.Spec(in)
	if err != nil {
		return nil, ExitError, err
	}
	if b.FromOrig {
		v.Notes = append(v.Notes, fmt.Sprintf("%s is ward's rewrite (annotation %s): judged the caller's original, %s",
			b.ConfigPath, bundle.RewrittenAnnotation, b.ConfigPath+bundle.OrigSuffix))
	}
	return &target{bundle: b, verdict: v, policy: p, before: before}, ExitOK, nil
}

// explainPool is the node's ward pool when /etc/subuid and /etc/subgid
// have one (a mapping the kubelet made is verified against it), else the
// placeholder block.
func explainPool(p *policy.Policy) []userns.Range {
	if pool, err := userns.LoadPool("/etc/subuid", "/etc/subgid", p.Userns.Pool); err == nil {
		return pool
	}
	return []userns.Range{userns.Placeholder()}
}

// explainUserns stands for the block a front door would allocate: the CLI
// allocates none, and its reports stay the same on every machine.
func explainUserns(w bundle.Workload) *policy.UsernsInput {
	in := &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Placeholder: true}
	if w.Kind == bundle.PodContainer {
		in.Join = "/proc/<sandbox pid>/ns/user"
	}
	return in
}

// exitFor maps a verdict to the exit status.
func exitFor(v *judge.Verdict) int {
	if v.Action == policy.Reject && !v.Audit {
		return ExitRejected
	}
	return ExitOK
}

// fail prints err and returns status.
func fail(env *Env, status int, err error) int {
	var be *bundle.Error
	if errors.As(err, &be) {
		fmt.Fprintf(env.Stderr, "ward: invalid spec: %v\n", err)
	} else {
		fmt.Fprintf(env.Stderr, "ward: %v\n", err)
	}
	return status
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
