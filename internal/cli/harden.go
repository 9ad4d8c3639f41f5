package cli

import (
	"bytes"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/policy"
)

// hardenCommand is `ward harden PATH -o OUT`: write the spec ward would
// hand to the runtime. A rejected spec writes nothing.
func hardenCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "harden [flags] BUNDLE|SPEC|-",
		Short: "write the spec ward would run",
		Long: "Write the spec ward would hand to the runtime for a bundle or spec (\"-\" reads it from stdin).\n" +
			"A rejected spec writes nothing and exits 3.",
		Args: cobra.ExactArgs(1),
	}
	out := c.Flags().StringP("output", "o", "-", "where to write the rewritten spec (- for stdout)")
	o := podFlags(c)
	policyPath := policyFlag(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		return status(runHarden(env, args[0], *out, *policyPath, *o))
	}
	return c
}

func runHarden(env *Env, path, out, policyPath string, o judgeOptions) int {
	p, err := policy.Load(policyPath)
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	t, st, err := judgeFile(env, path, p, o, false)
	if err != nil {
		return fail(env, st, err)
	}
	v := &t.verdict
	if v.Action == policy.Reject && !v.Audit {
		fmt.Fprintf(env.Stderr, "ward: rejected by rule %s: %s\n", v.Rule, v.Reason)
		return ExitRejected
	}
	data, err := specJSON(t.bundle.Spec)
	if err != nil {
		return fail(env, ExitError, err)
	}
	if out == "-" {
		_, err = env.Stdout.Write(data)
	} else {
		err = atomicfile.Write(out, data, 0o644, true)
	}
	if err != nil {
		return fail(env, ExitError, fmt.Errorf("writing hardened spec: %w", err))
	}
	fmt.Fprintf(env.Stderr, "ward: %s", v.Action)
	if v.Action == policy.Sandbox {
		fmt.Fprintf(env.Stderr, " (%s; spec unchanged)", v.Backend)
	}
	fmt.Fprintf(env.Stderr, ", %d change(s)\n", len(v.Changes))
	return ExitOK
}

// specJSON encodes a spec the way runtimes read it. Output uses the
// standard library's encoding, which is what runc decodes with.
func specJSON(s *specs.Spec) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	return buf.Bytes(), nil
}
