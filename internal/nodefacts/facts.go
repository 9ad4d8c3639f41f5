// Package nodefacts gathers what ward's checks need to know about this
// node's host objects: what each path a spec names is (device, inode, file
// type, the directories above it, who listens on a socket), the
// identities of the policy's sensitive directories and allowed hooks, and
// the host's and the pod sandbox's namespaces. It only stats and reads
// /proc; policy evaluation stays pure and is given these facts
// (policy.Input.Node), so golden tests can give made-up ones.
//
// Only a Linux node has those facts: elsewhere (`ward explain` on a
// developer's machine) Gather gives none, Supported is false, and the
// spec's host paths are judged by their spelling, as `ward scan` judges a
// manifest's; the verdict says so.
package nodefacts

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/policy"
)

// Options are what the front door knows beyond the spec.
type Options struct {
	// SandboxPID is the pod sandbox's init process, when known (the shim
	// created it): a pod's app container must join its namespaces.
	SandboxPID int
	// Proc is procfs's mount point; "" is /proc. Tests point it elsewhere.
	Proc string
	// Node are the node's namespaces as the front door found its own at
	// start (OwnNamespaces), for when PID 1's cannot be read.
	Node map[specs.LinuxNamespaceType]policy.ObjectID
}
