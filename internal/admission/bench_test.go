package admission_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/ward-runtime/ward/policy"
)

// BenchmarkShimCreatePod is what the shim's Create costs a pod with a warm
// judge (every pod after a shim's first call): the CRI corpus's ordinary
// pod, sandbox then app container, each loaded, judged, rewritten, written
// and logged, runc's side a stand-in. Per iteration one pod, with its own
// sandbox ID; writing the bundles is not timed.
//
//	go test -run '^$' -bench ShimCreatePod -benchmem ./internal/admission
func BenchmarkShimCreatePod(b *testing.B) {
	dir := b.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, policy.DefaultWithoutUserns(), 0o644); err != nil {
		b.Fatal(err)
	}
	corpus := filepath.Join("..", "..", "testdata", "corpus", "cri-ordinary")
	sandbox, err := os.ReadFile(filepath.Join(corpus, "sandbox.json"))
	if err != nil {
		b.Fatal(err)
	}
	app, err := os.ReadFile(filepath.Join(corpus, "container.json"))
	if err != nil {
		b.Fatal(err)
	}
	const oldID = "a49943f8fd54a81844665037197db9b636fe03a670d275ea2faa32089d3df8ac"
	d := newShimDoor(b, dir, pol)
	write := func(path string, data []byte) {
		if err := os.MkdirAll(filepath.Join(path, "rootfs"), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "config.json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	i := 0
	for b.Loop() {
		b.StopTimer()
		id := fmt.Sprintf("%064x", i)
		i++
		sb, ab := filepath.Join(dir, "sb-"+id[56:]), filepath.Join(dir, "app-"+id[56:])
		write(sb, []byte(strings.ReplaceAll(string(sandbox), oldID, id)))
		write(ab, []byte(strings.ReplaceAll(string(app), oldID, id)))
		b.StartTimer()
		if _, err := d.svc.Create(ctx, &taskAPI.CreateTaskRequest{ID: id, Bundle: sb}); err != nil {
			b.Fatalf("sandbox: %v", err)
		}
		if _, err := d.svc.Create(ctx, &taskAPI.CreateTaskRequest{ID: "ctr-" + id, Bundle: ab}); err != nil {
			b.Fatalf("app container: %v", err)
		}
	}
}
