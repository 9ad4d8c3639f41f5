// Package cli implements the ward command on spf13/cobra. Each subcommand
// lives in its own file as a constructor of its *cobra.Command and is
// listed once, in commands(); cmd/ward only calls Main. Help, suggestions,
// shell completion and man pages all come from those same definitions.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/internal/nodeonly"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/internal/version"
	"github.com/ward-runtime/ward/policy"
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

// commands is the table of subcommands, in the order help lists them.
func commands(env *Env) []*cobra.Command {
	return []*cobra.Command{
		explainCommand(env),
		nodeOnly(env, runtime.GOOS, hardenCommand(env)),
		scanCommand(env),
		attackCommand(env),
		checksCommand(env),
		policyCommand(env),
		nodeOnly(env, runtime.GOOS, doctorCommand(env)),
		alertsCommand(env),
		incidentCommand(env),
		nodeOnly(env, runtime.GOOS, installCommand(env)),
		metricsCommand(env),
		nodeOnly(env, runtime.GOOS, uninstallCommand(env)),
		versionCommand(env),
		manCommand(env),
	}
}

// nodeOnly marks a command that reads or changes a Linux node (its
// kernel, its files, a spec to run there): on any other goos it fails
// with a *nodeonly.Error, exit status ExitError, before doing anything,
// instead of doing part of its work on a machine that is not a node.
// scan, explain, the policy exports and the log readers run anywhere.
func nodeOnly(env *Env, goos string, c *cobra.Command) *cobra.Command {
	if goos == "linux" {
		return c
	}
	c.RunE = func(*cobra.Command, []string) error {
		return status(fail(env, ExitError, &nodeonly.Error{What: "ward " + c.Name(), OS: goos}))
	}
	return c
}

// Env is what a subcommand may touch.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// exitStatus is a subcommand's non-zero exit status, returned as an error
// through cobra; whatever needed saying has been said.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// status turns a subcommand's exit status into RunE's error.
func status(code int) error {
	if code == ExitOK {
		return nil
	}
	return exitStatus(code)
}

// Main runs ward with args (without the program name) and returns the exit
// status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root := rootCommand(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	// Everything else cobra returns is bad usage: an unknown command or
	// flag, a wrong number of arguments.
	fmt.Fprintf(stderr, "ward: %v\n", err)
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return ExitBadInput
}

func rootCommand(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ward",
		Short: "judge containers by their OCI spec; harden, sandbox or reject them",
		Long: "ward judges containers by their OCI spec: it hardens them on runc, routes them to a\n" +
			"sandbox runtime (gVisor, Kata) or rejects them, always saying why.",
		Version:       version.Version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// Suggestions for a mistyped command ("did you mean explain?").
		SuggestionsMinimumDistance: 2,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetVersionTemplate("{{.Name}} version {{.Version}}\n")
	root.SetHelpTemplate(root.HelpTemplate() + fmt.Sprintf(
		"\nExit status: %d may run, %d rejected, %d bad usage or input, %d ward failed; doctor: %d on a FAIL.\n",
		ExitOK, ExitRejected, ExitBadInput, ExitError, ExitCheckFailed))
	// Flag errors are usage errors: cobra returns them to Main.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(commands(env)...)
	return root
}

// jsonFlag is the one --json flag every subcommand with a JSON document
// declares, with the same name and help.
func jsonFlag(c *cobra.Command, what string) *bool {
	return c.Flags().Bool("json", false, "print "+what+" as JSON (with wardVersion)")
}

// policyFlag is the one --policy flag.
func policyFlag(c *cobra.Command) *string {
	return c.Flags().String("policy", "", "node policy file (default: the embedded policy)")
}

// podFlags are explain's and harden's --pod and --without-pod.
func podFlags(c *cobra.Command) *judgeOptions {
	var o judgeOptions
	c.Flags().StringVar(&o.pod, "pod", "", "the pod's sandbox spec, to judge an app container in its pod's context")
	c.Flags().BoolVar(&o.withoutPod, "without-pod", false, "judge a pod's app container without its sandbox spec (its pod's settings unknown)")
	c.MarkFlagsMutuallyExclusive("pod", "without-pod")
	return &o
}

// target is a judged container, as explain and harden share it.
type target struct {
	bundle  *bundle.Bundle
	verdict judge.Verdict
	policy  *policy.Policy
	// before is the spec as loaded, pretty-printed, for --diff.
	before []byte
}

// judgeOptions is how explain and harden judge a spec.
type judgeOptions struct {
	// pod is the pod's sandbox spec, for an app container.
	pod string
	// withoutPod judges an app container alone, its pod's settings unknown.
	withoutPod bool
}

// errPodUnknown: an app container judged alone would be judged without
// its pod's host namespaces and sysctls, which only the sandbox spec shows;
// its decision could say "may run" of a container that may not.
var errPodUnknown = errors.New("pod unknown")

// loadTarget loads path (a bundle, a spec, or "-" for stdin).
func loadTarget(env *Env, path string) (*bundle.Bundle, error) {
	if path == "-" {
		return bundle.Read(env.Stdin, "(stdin)", 0)
	}
	// A bundle a front door has hardened holds ward's rewrite: judge the
	// caller's original kept beside it, as the next create would.
	return bundle.LoadOriginal(path, 0)
}

// judgeFile loads the spec at path (and the pod's sandbox spec, if given)
// and judges it under the policy p. preview: the verdict is only printed
// (explain), never run (harden writes a spec to run, which off Linux fails
// with a *nodeonly.Error).
func judgeFile(env *Env, path string, p *policy.Policy, o judgeOptions, preview bool) (*target, int, error) {
	// The node configuration says which backends exist; the policy is the
	// one given (or the embedded default), not the node's.
	cfg, err := nodeconfig.Load(nodeconfig.Sources{Getenv: os.Getenv})
	if err != nil {
		return nil, ExitBadInput, err
	}
	adm, err := admission.New(cfg, admission.Options{
		Door: admission.DoorCLI, Launcher: judge.Launcher(), NoLog: true, NoPool: true,
		Policy: p, Pool: explainPool(p), NodeNamespaces: nodefacts.OwnNamespaces(), Preview: preview,
	})
	if errors.Is(err, nodeonly.ErrNotSupported) {
		return nil, ExitError, err
	}
	if err != nil {
		return nil, ExitBadInput, err
	}
	defer adm.Close()
	b, err := loadTarget(env, path)
	if err != nil {
		return nil, ExitBadInput, err
	}
	before, err := specJSON(b.Spec)
	if err != nil {
		return nil, ExitError, err
	}
	var sb *bundle.Bundle
	switch {
	case o.pod != "":
		if sb, err = bundle.Load(o.pod, 0); err != nil {
			return nil, ExitBadInput, fmt.Errorf("loading the pod's sandbox spec: %w", err)
		}
		if err := samePod(b, sb, o.pod); err != nil {
			return nil, ExitBadInput, err
		}
	case b.Workload.Kind == bundle.PodContainer && !o.withoutPod:
		return nil, ExitBadInput, fmt.Errorf("%s: %w: it is an app container of pod %s/%s (sandbox %s), whose host namespaces and sysctls only the sandbox's spec shows; "+
			"pass that spec with --pod SANDBOX, or --without-pod to judge the container alone",
			b.ConfigPath, errPodUnknown, b.Workload.Namespace, b.Workload.Pod, shortID(b.Workload.SandboxID))
	}
	v, err := adm.Explain(b, sb, explainUserns(b.Workload))
	if err != nil {
		return nil, ExitError, err
	}
	if b.FromOrig {
		v.Notes = append(v.Notes, fmt.Sprintf("%s is ward's rewrite (annotation %s): judged the caller's original, %s",
			b.ConfigPath, bundle.RewrittenAnnotation, b.ConfigPath+bundle.OrigSuffix))
	}
	return &target{bundle: b, verdict: v, policy: p, before: before}, ExitOK, nil
}

// samePod refuses a --pod that is not the app container's own sandbox: its
// host namespaces and sysctls would be another pod's.
func samePod(c, sb *bundle.Bundle, podPath string) error {
	if sb.Workload.Kind != bundle.Sandbox {
		return fmt.Errorf("%s is not a pod sandbox spec (annotation %s is %q)",
			podPath, bundle.AnnotationContainerType, sb.Spec.Annotations[bundle.AnnotationContainerType])
	}
	if c.Workload.Kind != bundle.PodContainer {
		return fmt.Errorf("--pod is for a pod's app container; %s is a %s container", c.ConfigPath, c.Workload.Kind)
	}
	if c.Workload.SandboxID != sb.Workload.SandboxID {
		return fmt.Errorf("%s belongs to sandbox %s, but --pod %s is sandbox %s: judge a container with its own pod's sandbox spec",
			c.ConfigPath, orUnknown(shortID(c.Workload.SandboxID)), podPath, orUnknown(shortID(sb.Workload.SandboxID)))
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func orUnknown(s string) string {
	if s == "" {
		return "(none named)"
	}
	return s
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

// worse is the exit status of several inputs: ward's own failure first,
// then bad input, then a rejection.
func worse(a, b int) int {
	rank := func(s int) int {
		switch s {
		case ExitError:
			return 3
		case ExitBadInput:
			return 2
		case ExitRejected:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
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

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
