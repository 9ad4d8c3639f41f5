//go:build !linux

package nodefacts

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/policy"
)

// Supported is false: this machine is not a Linux node, and its files say
// nothing about a node's host objects.
const Supported = false

// OwnNamespaces returns none: namespaces are Linux's.
func OwnNamespaces() map[specs.LinuxNamespaceType]policy.ObjectID { return nil }

// Gather returns no facts: the files a spec names are a node's, not this
// machine's, and the checks judge them by their spelling.
func Gather(*specs.Spec, string, *policy.Policy, Options) *policy.NodeFacts { return nil }

// Inhabited is false: no process here lives in a Linux namespace. Only a
// front door creating a container asks, and admission builds none off
// Linux (nodeonly).
func Inhabited(specs.LinuxNamespaceType, policy.ObjectID, string) bool { return false }
