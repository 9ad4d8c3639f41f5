package cli

import (
	"bytes"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/atomicfile"
	"github.com/ward-runtime/ward/policy"
)

// runHarden implements `ward harden PATH -o OUT`: write the spec ward would
// hand to the runtime. A rejected spec writes nothing.
func runHarden(env *Env, args []string) int {
	fs := newFlagSet(env, "harden", "[-o OUT] [--pod SANDBOX] [--policy FILE] BUNDLE|SPEC")
	out := fs.String("o", "-", "where to write the rewritten spec (- for stdout)")
	pod := fs.String("pod", "", "the pod's sandbox spec, to judge an app container in its pod's context")
	policyPath := fs.String("policy", "", "node policy file (default: the embedded policy)")
	pos, err := parse(fs, args)
	if err != nil {
		return ExitBadInput
	}
	if len(pos) != 1 {
		fs.Usage()
		return ExitBadInput
	}
	t, status, err := judgeFile(pos[0], *pod, *policyPath)
	if err != nil {
		return fail(env, status, err)
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
	if *out == "-" {
		_, err = env.Stdout.Write(data)
	} else {
		err = atomicfile.Write(*out, data, 0o644, true)
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
