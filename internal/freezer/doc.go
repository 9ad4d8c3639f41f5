// Package freezer freezes, thaws and kills a container's cgroup: ward's
// answer to an escape attempt (a response of "freeze" or "kill") and the
// state an incident bundle is collected in.
//
// Both freezers are supported: cgroup v1's freezer controller
// (freezer.state: THAWED, FREEZING, FROZEN) and cgroup v2's core freezer
// (cgroup.freeze, with the outcome in cgroup.events' "frozen" key, Linux
// 5.2+). On a hybrid node the v1 controller is the one runtimes manage, so
// it is used when it is mounted.
//
// Kill freezes first, signals every process in the cgroup and its
// descendants with SIGKILL, then thaws: a frozen process cannot fork, exit
// or be replaced by a new one with the same PID between the listing and the
// signal, so nothing escapes the kill and nothing outside the cgroup is hit.
//
// A container's cgroup is found the way runc places it (Locate):
// linux.cgroupsPath in its cgroupfs form (an absolute path below each
// hierarchy's root, or a relative one below the runtime's own cgroup) or its
// systemd form ("slice:prefix:name"), and checked against the cgroup its
// init process is actually in, so a spec that lies about it cannot point
// the freezer at another container.
//
// Missing kernel support is a *NotSupportedError (errors.Is(err,
// ErrNotSupported)), in the manner of cilium/ebpf: callers tell "this node
// cannot" from "this failed".
package freezer
