package judge

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/policy"
)

// BenchmarkPipeline measures what ward adds to every container start: parse
// and validate a typical CRI app-container config.json, evaluate it, and
// rewrite it. The seccomp profile cache is warm, as in a running shim, and
// the policy knows the node's kubelet and containerd directories, as on a
// real node.
func BenchmarkPipeline(b *testing.B) {
	c := corpusCase{name: "cri-ordinary", dir: "../../testdata/corpus/cri-ordinary"}
	for _, cc := range corpus(b) {
		if cc.name == c.name {
			c = cc
		}
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "container.json"))
	if err != nil {
		b.Fatal(err)
	}
	j, err := New(c.nodePolicy(b), Options{Launcher: testLauncher})
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
