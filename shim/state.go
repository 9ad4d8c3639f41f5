package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ward-runtime/ward/atomicfile"
	"github.com/ward-runtime/ward/bounded"
	"github.com/ward-runtime/ward/policy"
)

// podState is the file the shim keeps per pod under the state directory:
// how the pod runs, for operators and for routing its later containers'
// shim start calls (a Kata pod never reaches ward's task service).
type podState struct {
	SandboxID string         `json:"sandboxID"`
	Action    policy.Action  `json:"action"`
	Backend   policy.Backend `json:"backend"`
	// Bundle is the sandbox's bundle directory: once it is gone, so is
	// the pod (prunePodStates).
	Bundle string `json:"bundle,omitempty"`
}

func podStatePath(dir, id string) (string, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return "", fmt.Errorf("invalid sandbox id %q", id)
	}
	return filepath.Join(dir, id+".json"), nil
}

func writePodState(dir, id, bundleDir string, a policy.Action, b policy.Backend) error {
	path, err := podStatePath(dir, id)
	if err != nil {
		return err
	}
	data, err := json.Marshal(podState{SandboxID: id, Action: a, Backend: b, Bundle: bundleDir})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating pod state directory: %w", err)
	}
	// No fsync: the record describes a running pod, and no pod outlives a
	// crash of its node; prunePodStates drops records whose bundles went.
	return atomicfile.Write(path, data, 0o640, false)
}

func readPodState(dir, id string) (*podState, error) {
	path, err := podStatePath(dir, id)
	if err != nil {
		return nil, err
	}
	data, err := bounded.ReadFile(path, 1<<16)
	if err != nil {
		return nil, err
	}
	var p podState
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("reading pod state %s: %w", path, err)
	}
	return &p, nil
}

func removePodState(dir, id string) error {
	path, err := podStatePath(dir, id)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// prunePodStates removes the records of pods whose sandbox bundle is gone
// (containerd removes it with the pod). Records that name no bundle are
// kept: without it, ward cannot tell that their pod is gone.
func prunePodStates(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		st, err := readPodState(dir, id)
		if err != nil || st.Bundle == "" || !filepath.IsAbs(st.Bundle) {
			continue
		}
		if _, err := os.Stat(st.Bundle); errors.Is(err, fs.ErrNotExist) {
			removePodState(dir, id)
		}
	}
}
