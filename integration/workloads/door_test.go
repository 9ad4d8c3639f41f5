package workloads_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// image is the corpus's image on every door.
const image = "ward.test/workloads-bookworm:1"

// errNotHere is what a door returns for an operation its front door does
// not have (a CRI pod is not committed or copied into); the check is then
// not applicable there, on both runtimes.
var errNotHere = errors.New("no such operation on this front door")

// door is one front door (Docker, Podman, containerd's CRI through a
// kubelet's requests) with one runtime under it: runc itself, or ward over
// the same runc with ward's default policy. The checks are written once
// against it; each door says how its manager spells an operation.
type door interface {
	// doorName is "docker", "podman" or "cri"; runtime "runc" or "ward".
	doorName() string
	runtime() string
	// decisionLog is ward's decision log ("" under runc).
	decisionLog() string
	// run runs c to completion and removes it.
	run(c ctr) error
	// start starts c in the background under c.name.
	start(c ctr) error
	// wait waits for the container name to exit and fails unless it
	// exited 0.
	wait(name string) error
	// exec runs cmd in the started container name as user ("" for the
	// container's own).
	exec(name, user string, cmd ...string) harness.DockerResult
	logs(name string) (string, error)
	// restart restarts the container the way the manager does (Docker and
	// Podman: the same container; a kubelet: a new attempt in the pod).
	restart(name string) error
	// stopStart stops the container and starts the same one again.
	stopStart(name string) error
	commit(name, img string) error
	// build builds dockerfile (a context of its own) as tag.
	build(dockerfile, tag string) error
	cpIn(src, name, dst string) error
	cpOut(name, src, dst string) error
	// layerOwners are uid:gid of the entries of img's top layer that
	// want names (its keys), from the layer's tar headers.
	layerOwners(img string, want map[string]string) (map[string]string, error)
	// hostDir is a new directory on the host, for bind mounts.
	hostDir(name string) (string, error)
	// removeAll removes every container (and pod) the checks made.
	removeAll()
}

// ctr is a container as the checks ask for it.
type ctr struct {
	name    string // for start
	user    string // "" for the image's, else a name or uid[:gid]
	workdir string
	// readOnly is a read-only root filesystem with a writable /tmp
	// (Docker's --read-only --tmpfs /tmp; a pod's readOnlyRootFilesystem
	// with an emptyDir at /tmp).
	readOnly bool
	mounts   []mount
	cmd      []string
}

// mount is a volume (named volume; a pod's emptyDir, shared by the pod's
// containers) or a host directory (bind mount; hostPath).
type mount struct {
	volume, host, target string
}

// ok fails on a non-zero exit.
func ok(r harness.DockerResult, what string) error {
	if r.Code != 0 {
		return fmt.Errorf("%s: %s", what, r)
	}
	return nil
}

// execOK runs an exec session and fails on a non-zero exit.
func execOK(d door, name, user string, cmd ...string) error {
	return ok(d.exec(name, user, cmd...), "exec "+strings.Join(cmd, " "))
}

// eventually retries an exec session for up to a minute (postgres's
// initdb alone took over 20 seconds on a loaded machine).
func eventually(d door, name, user string, cmd ...string) error {
	var last harness.DockerResult
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if last = d.exec(name, user, cmd...); last.Code == 0 {
			return nil
		}
	}
	return fmt.Errorf("exec %s: %s", strings.Join(cmd, " "), last)
}

// sh is a shell command line.
func sh(script string) []string { return []string{"sh", "-c", script} }
