package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ward-runtime/ward/manifest"
	"github.com/ward-runtime/ward/policy"
	"github.com/ward-runtime/ward/scan"
)

// runScan implements `ward scan PATH...`: judge Kubernetes manifests as
// the node would judge their pods, and write the verdicts for CI. Exit
// status: 0 the gate passes, 3 it fails (--fail-on), 2 bad usage or an
// unreadable manifest or policy, 1 ward failed.
func runScan(env *Env, args []string) int {
	names := make([]string, 0, len(scan.Formats()))
	for _, f := range scan.Formats() {
		names = append(names, string(f))
	}
	fs := newFlagSet(env, "scan", "[--format "+strings.Join(names, "|")+"] [--fail-on reject|none|SEVERITY] [--policy FILE] [-o FILE] PATH... (- for stdin)")
	format := fs.String("format", string(scan.Table), "output format: "+strings.Join(names, ", "))
	failOn := fs.String("fail-on", "reject", "exit 3 when a container is rejected (reject), has a finding at or above a severity (info..critical; rejections count too), or never (none)")
	policyPath := fs.String("policy", "", "node policy file (default: the embedded policy)")
	out := fs.String("o", "", "write the report to FILE instead of standard output")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitBadInput
	}
	if len(pos) == 0 {
		fs.Usage()
		return ExitBadInput
	}
	f, err := scan.ParseFormat(*format)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	gate, err := scan.ParseGate(*failOn)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	p, err := policy.Load(*policyPath)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	objs, skipped, err := manifest.Read(pos, os.Stdin)
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
	if *out != "" {
		file, err := os.Create(*out)
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
