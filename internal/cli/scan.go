package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/internal/scan"
	"github.com/ward-runtime/ward/policy"
)

// scanCommand is `ward scan PATH...`: judge Kubernetes manifests as the
// node would judge their pods, and write the verdicts for CI. Exit status:
// 0 the gate passes, 3 it fails (--fail-on), 2 bad usage or an unreadable
// manifest or policy, 1 ward failed.
func scanCommand(env *Env) *cobra.Command {
	names := make([]string, 0, len(scan.Formats()))
	for _, f := range scan.Formats() {
		names = append(names, string(f))
	}
	c := &cobra.Command{
		Use:   "scan [flags] PATH|- ...",
		Short: "judge Kubernetes manifests as the node would, for CI",
		Long: "Read Kubernetes manifests (files, folders, \"-\" for stdin; multi-document and Helm-rendered YAML),\n" +
			"translate each pod template into the specs the node will see, and judge them with the same\n" +
			"policy and finding IDs as the node (docs/ci.md).",
		Args: cobra.MinimumNArgs(1),
	}
	format := c.Flags().String("format", string(scan.Table), "output format: "+strings.Join(names, ", "))
	failOn := c.Flags().String("fail-on", "reject", "exit 3 when a container is rejected (reject), has a finding at or above a severity (info..critical; rejections count too), or never (none)")
	policyPath := policyFlag(c)
	out := c.Flags().StringP("output", "o", "", "write the report to FILE instead of standard output")
	c.RunE = func(_ *cobra.Command, args []string) error {
		return status(runScan(env, args, *format, *failOn, *policyPath, *out))
	}
	return c
}

func runScan(env *Env, pos []string, format, failOn, policyPath, out string) int {
	f, err := scan.ParseFormat(format)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	gate, err := scan.ParseGate(failOn)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	p, err := policy.Load(policyPath)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	objs, skipped, err := manifest.Read(pos, env.Stdin)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	s, err := scan.New(p, manifest.DefaultNode(p))
	if err != nil {
		return fail(env, ExitError, err)
	}
	results, err := s.Scan(objs)
	var me *manifest.Error
	switch {
	case errors.As(err, &me):
		return fail(env, ExitBadInput, err)
	case err != nil:
		return fail(env, ExitError, err)
	}
	rep := &scan.Report{Policy: p, Results: results, Skipped: len(skipped), Gate: gate}
	w := env.Stdout
	if out != "" {
		file, err := os.Create(out)
		if err != nil {
			return fail(env, ExitError, fmt.Errorf("writing report: %w", err))
		}
		defer file.Close()
		w = file
	}
	if err := rep.Write(w, f); err != nil {
		return fail(env, ExitError, err)
	}
	if rep.Failed() {
		return ExitRejected
	}
	return ExitOK
}
