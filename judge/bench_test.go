package judge

import (
	"os"
	"testing"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/policy"
)

// BenchmarkPipeline measures what ward adds to every container start: parse
// and validate a typical CRI app-container config.json, evaluate it, and
// rewrite it. The seccomp profile cache is warm, as in a running shim.
func BenchmarkPipeline(b *testing.B) {
	data, err := os.ReadFile("../testdata/corpus/cri-ordinary/container.json")
	if err != nil {
		b.Fatal(err)
	}
	p, err := policy.Default()
	if err != nil {
		b.Fatal(err)
	}
	j, err := New(p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, err := bundle.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		v, err := j.Spec(policy.Input{Spec: s, Workload: bundle.WorkloadOf(s)})
		if err != nil || v.Action != policy.Harden {
			b.Fatalf("verdict %s: %v", v.Action, err)
		}
	}
}
