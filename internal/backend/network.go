package backend

import "strings"

// Modes of runsc's --network flag.
const (
	// RunscNetworkSandbox, runsc's default: gVisor's own network stack,
	// given the namespace's addresses.
	RunscNetworkSandbox = "sandbox"
	// RunscNetworkHost: the Sentry uses the namespace's network stack.
	RunscNetworkHost = "host"
	// RunscNetworkNone: loopback only, in a namespace of runsc's own.
	RunscNetworkNone = "none"
)

// InJoinedNetns returns r as it must run a container that gets a sandbox
// of its own inside a network namespace other processes already live in:
// a runc pod's (admission's isolate: a NET_ADMIN init container beside runc
// apps), a Docker --network container:X's, a Podman pod's or
// --network container:X's.
//
// runsc's default, --network=sandbox, takes the namespace's addresses and
// routes off its interfaces and hands them to gVisor's own network stack;
// they are not put back when the sandbox exits. In a namespace that is
// someone else's those are their IP: the pod's other containers, on runc,
// or container X would lose their network, during and after the gVisor
// container. --network=host leaves the namespace as it is and has the
// Sentry use it, so the namespace keeps its IP and shares it, as
// containers of one pod do. It is still that namespace, never the node's
// (admission refuses a sandbox there, policy.RuleSandboxHostNetwork): what
// changes is that the container's socket calls reach the node kernel's
// network stack through the Sentry rather than gVisor's netstack
// (docs/shim.md says what that costs).
//
// A flag rather than an annotation. runsc's per-container switch is the
// annotation dev.gvisor.flag.network, which it honours only when the node
// runs it with --allow-flag-override: that would let every workload's
// annotations set any runsc flag (network is not on runsc's list of
// overrides that cannot weaken the sandbox). A marker of ward's own in the
// spec would have to be refused in every incoming spec and read back from
// the bundle at each call (runsc sets the network up at start, not create,
// so both need it). As a flag it travels the way every backend flag does,
// in what the front door already keeps per container (the shim's runtime
// binary, ward-runtime's state record), chosen by admission alone: nothing
// a workload writes can select it.
//
// An operator's own --network other than sandbox (none, say) is kept: it
// leaves the namespace's addresses alone too, and is the stricter choice.
// Runtimes of another dialect are returned as they are, with mode "". mode
// is the --network the result runs with.
func (r Runtime) InJoinedNetns() (_ Runtime, mode string) {
	if !r.Runsc() {
		return r, ""
	}
	flags := make([]string, 0, len(r.Flags)+1)
	mode = RunscNetworkSandbox
	for i := 0; i < len(r.Flags); i++ {
		f := r.Flags[i]
		name, value, hasValue := strings.Cut(f, "=")
		if name != "--network" && name != "-network" {
			flags = append(flags, f)
			continue
		}
		if !hasValue && i+1 < len(r.Flags) {
			i++
			value = r.Flags[i]
		}
		mode = value
	}
	if mode == RunscNetworkSandbox || mode == "" {
		mode = RunscNetworkHost
	}
	r.Flags = append(flags, "--network="+mode)
	return r, mode
}
