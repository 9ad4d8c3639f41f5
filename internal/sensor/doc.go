// Package sensor is ward's eBPF sensor for what seccomp cannot see: a
// container writing a cgroup's release_agent or notify_on_release,
// /proc/sys (core_pattern among it), /proc/sysrq-trigger or sysfs's
// uevent_helper; opening a host device; executing a file it wrote after it
// started (drift). The program (bpf/sensor.bpf.c) runs at syscall
// tracepoints and one BTF tracepoint (sched_process_exec), which load on
// kernels without kprobes, fentry or BPF-LSM; it is CO-RE, so one object
// fits every kernel with BTF, and the generated object is committed (see
// gen.go), so ward builds without clang or cgo.
//
// One copy runs per node (per ward state directory): Open loads and pins it
// in bpffs the first time, and every supervisor after that opens the pinned
// map (Shared). Only ward's containers are watched: a supervisor adds each
// container's cgroup (its cgroup v2 ID, CgroupID) with a record of the
// container when it starts and removes both when it stops; a process in
// that cgroup or below it is the container's. One supervisor at a time
// reads the events (Lead). Everything else on the node costs a few map
// lookups per open and exec. Load loads a private copy, for probes and
// tests.
//
// Where the kernel cannot load the program, Load returns a
// *NotSupportedError (errors.Is(err, ErrNotSupported)): ward's seccomp
// supervisor still works, and `ward doctor` says what is missing. BPF-LSM,
// which could deny rather than only see, is probed at Load and reported in
// Sensor.LSM; ward does not use it yet.
package sensor
