package supervisor

// arg is one argument an alert reports.
type arg struct {
	index int
	// field is the Falco-style output field ("evt.arg.dir").
	field string
	// path: the argument points to a NUL-terminated string in the
	// process's memory; otherwise it is reported as a number.
	path bool
	// target: the path is the call's object (Falco's fd.name).
	target bool
}

// callArgs says which arguments of a notified call an alert reports.
func callArgs(name string) []arg {
	switch name {
	case "mount":
		return []arg{{0, "evt.arg.dev", true, false}, {1, "evt.arg.dir", true, true}, {2, "evt.arg.type", true, false}, {3, "evt.arg.flags", false, false}}
	case "umount", "umount2", "chroot", "swapon", "swapoff":
		return []arg{{0, "evt.arg.path", true, true}}
	case "pivot_root":
		return []arg{{0, "evt.arg.new_root", true, true}, {1, "evt.arg.put_old", true, false}}
	case "open_tree", "fspick", "mount_setattr":
		return []arg{{1, "evt.arg.path", true, true}, {2, "evt.arg.flags", false, false}}
	case "move_mount":
		return []arg{{1, "evt.arg.from", true, false}, {3, "evt.arg.to", true, true}}
	case "fsopen":
		return []arg{{0, "evt.arg.fsname", true, false}}
	case "unshare", "clone":
		return []arg{{0, "evt.arg.flags", false, false}}
	case "setns":
		return []arg{{0, "evt.arg.fd", false, false}, {1, "evt.arg.nstype", false, false}}
	case "ptrace":
		return []arg{{0, "evt.arg.request", false, false}, {1, "evt.arg.pid", false, false}}
	case "process_vm_readv", "process_vm_writev", "kcmp":
		return []arg{{0, "evt.arg.pid", false, false}}
	case "bpf":
		return []arg{{0, "evt.arg.cmd", false, false}}
	case "keyctl":
		return []arg{{0, "evt.arg.operation", false, false}}
	case "add_key", "request_key":
		return []arg{{0, "evt.arg.type", true, false}}
	case "perf_event_open":
		return []arg{{1, "evt.arg.pid", false, false}, {2, "evt.arg.cpu", false, false}}
	case "open_by_handle_at":
		return []arg{{0, "evt.arg.mountfd", false, false}, {2, "evt.arg.flags", false, false}}
	case "finit_module":
		return []arg{{0, "evt.arg.fd", false, false}}
	case "init_module":
		return []arg{{2, "evt.arg.uargs", true, false}}
	case "reboot":
		return []arg{{2, "evt.arg.cmd", false, false}}
	case "iopl", "ioperm":
		return []arg{{0, "evt.arg.level", false, false}}
	}
	return nil
}
