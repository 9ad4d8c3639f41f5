package shim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// kataFixture: a policy that sends pods annotated ward.dev/kata=true to
// Kata, and a configuration naming kataShim.
func kataFixture(t *testing.T, kataShim string) *fixture {
	f := newFixture(t)
	pol := strings.Replace(string(policy.DefaultYAML()), "\nexemptions: []",
		"\n  - name: kata-annotated\n    reason: the pod asked for a VM\n    match: {annotations: {ward.dev/kata: \"true\"}}\n    action: sandbox\n    backend: kata\n\nexemptions: []", 1)
	pp := filepath.Join(f.dir, "policy.yaml")
	if err := os.WriteFile(pp, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "stateDir: " + f.state + "\npolicy: " + pp + "\nbackends:\n  kata: {binary: " + kataShim + "}\n"
	if err := os.WriteFile(filepath.Join(f.dir, "shim.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func kataAnnotated(s *specs.Spec) { s.Annotations["ward.dev/kata"] = "true" }

func TestKataMissingFailsClosed(t *testing.T) {
	f := kataFixture(t, "/nonexistent/containerd-shim-kata-v2")
	dir, _ := f.bundleFrom(t, "cri-ordinary", "sandbox.json", kataAnnotated)
	t.Chdir(dir)
	_, _, err := shimRoute(&bootapi.BootstrapParams{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/containerd-shim-kata-v2") || !strings.Contains(err.Error(), "kata-annotated") {
		t.Fatalf("err = %v, want one naming the binary and the rule", err)
	}
}

func TestKataDelegation(t *testing.T) {
	// A stand-in for Kata's shim that answers start the pre-2.3 way.
	kata := filepath.Join(t.TempDir(), "containerd-shim-kata-v2")
	if err := os.WriteFile(kata, []byte("#!/bin/sh\necho unix:///run/kata/$$.sock\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := kataFixture(t, kata)
	sbDir, sb := f.bundleFrom(t, "cri-ordinary", "sandbox.json", kataAnnotated)
	t.Chdir(sbDir)
	got, undo, err := shimRoute(&bootapi.BootstrapParams{})
	if err != nil || got != kata || undo == nil {
		t.Fatalf("sandbox routed to %q (%v), want %s and an undo", got, err, kata)
	}
	res, err := manager{args: []string{"start"}}.delegateStart(context.Background(), got, &bootapi.BootstrapParams{InstanceID: "x"})
	if err != nil || !strings.HasPrefix(res.GetAddress(), "unix:///run/kata/") {
		t.Fatalf("delegated start: %v %v", res, err)
	}
	// The pod's app containers follow their sandbox to Kata.
	ctrDir, _ := f.bundleFrom(t, "cri-ordinary", "container.json", nil)
	t.Chdir(ctrDir)
	got, _, err = shimRoute(&bootapi.BootstrapParams{})
	if err != nil || got != kata {
		t.Fatalf("app container routed to %q (%v)", got, err)
	}
	pods, sbID := filepath.Join(f.state, "pods"), sb.Annotations[bundle.AnnotationSandboxID]
	if st, err := (admission.PodStore{Dir: pods}).Read(sbID); err != nil || st.Backend != policy.Kata || st.Bundle != sbDir {
		t.Errorf("pod state %+v %v", st, err)
	}
	// Kata's shim removes the pod, never telling ward: the record goes
	// when the next Kata pod arrives and finds the bundle gone.
	if err := os.RemoveAll(sbDir); err != nil {
		t.Fatal(err)
	}
	nextDir, next := f.bundleFrom(t, "cri-ordinary", "sandbox.json", func(s *specs.Spec) {
		kataAnnotated(s)
		s.Annotations[bundle.AnnotationSandboxID] = "next-pod"
	})
	// The fixture names bundles by corpus file: move this one off the
	// removed pod's path.
	if err := os.Rename(nextDir, nextDir+"-next"); err != nil {
		t.Fatal(err)
	}
	t.Chdir(nextDir + "-next")
	_, undoNext, err := shimRoute(&bootapi.BootstrapParams{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (admission.PodStore{Dir: pods}).Read(sbID); !errors.Is(err, admission.ErrNoPod) {
		t.Errorf("record of the removed Kata pod kept (%v)", err)
	}
	if _, err := (admission.PodStore{Dir: pods}).Read(next.Annotations[bundle.AnnotationSandboxID]); err != nil {
		t.Errorf("record of the live Kata pod: %v", err)
	}
	// Kata's start failed: Start undoes the record.
	undoNext()
	if _, err := (admission.PodStore{Dir: pods}).Read("next-pod"); !errors.Is(err, admission.ErrNoPod) {
		t.Errorf("record kept after undo (%v)", err)
	}
	// A pod the policy does not send to Kata stays with ward's shim.
	otherDir, _ := f.bundleFrom(t, "cri-cap-sys-admin", "sandbox.json", nil)
	t.Chdir(otherDir)
	if got, _, err := shimRoute(&bootapi.BootstrapParams{}); err != nil || got != "" {
		t.Errorf("ordinary sandbox routed to %q (%v)", got, err)
	}
}

// TestReleaseStale: `shim delete` of a dead shim's sandbox gives the
// pod's block back; of anything else, nothing.
func TestReleaseStale(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "userns")
	cfg := filepath.Join(dir, "shim.yaml")
	if err := os.WriteFile(cfg, []byte("stateDir: "+dir+"\nuserns:\n  stateDir: "+state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(nodeconfig.EnvConfig, cfg)
	if err := releaseStale("sb1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("cleanup created the allocator directory: %v", err)
	}
	a, err := userns.NewAllocator(state, []userns.Range{{Start: 1 << 30, Size: 4 * userns.BlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{usernsOwner("sb1"), usernsOwner("sb2")} {
		if _, err := a.Allocate(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := releaseStale("sb1"); err != nil {
		t.Fatal(err)
	}
	owners, err := a.Owners()
	if err != nil || len(owners) != 1 || owners[usernsOwner("sb2")].Size == 0 {
		t.Errorf("owners after releasing sb1: %v, %v", owners, err)
	}
}

// TestDefaultPolicyCannotChooseKata holds admission.ShimRoute's shortcut to the truth:
// it does not parse the embedded default policy because no rule of it can
// send a pod to Kata.
func TestDefaultPolicyCannotChooseKata(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	if backend.Builtin().UsesKind(p, backend.ContainerdShim) {
		t.Fatal("the embedded default policy has a rule for a shim backend: admission.ShimRoute must parse it at start")
	}
}
