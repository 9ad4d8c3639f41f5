package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file holds the checks of spec fields that name no host path:
// devices by number, ID mappings, seccomp hand-offs, scheduling, labels.

// devNum is a device as the kernel knows it: type and numbers. Paths in
// linux.devices are only where the node appears inside the container.
type devNum struct {
	typ          string // "b" or "c" ("u" is read as "c")
	major, minor int64  // -1: any
}

func devType(t string) string {
	if t == "u" {
		return "c"
	}
	return t
}

// defaultDevice reports whether d is one of the nodes every runtime makes:
// null, zero, full, random, urandom, tty, console, ptmx and the pts.
func defaultDevice(d devNum) bool {
	if d.typ != "c" {
		return false
	}
	switch d.major {
	case 1:
		return slices.Contains([]int64{3, 5, 7, 8, 9}, d.minor)
	case 5:
		return d.minor == 0 || d.minor == 1 || d.minor == 2
	case 136:
		return d.minor >= 0
	}
	return false
}

// diskDevice reports whether d reaches the host's storage or memory below
// every file permission: any block device, /dev/mem, /dev/kmem,
// /dev/port, raw SCSI (sg), the CPU's MSRs, the hibernation snapshot.
func diskDevice(d devNum) bool {
	if d.typ == "b" {
		return true
	}
	if d.typ != "c" {
		return false
	}
	switch d.major {
	case -1:
		return true
	case 1:
		return d.minor == -1 || d.minor == 1 || d.minor == 2 || d.minor == 4
	case 21, 202:
		return true
	case 10:
		return d.minor == -1 || d.minor == 231
	}
	return false
}

func (d devNum) String() string {
	n := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return strconv.FormatInt(v, 10)
	}
	return d.typ + " " + n(d.major) + ":" + n(d.minor)
}

// hostDevices counts the device nodes beyond the runtime defaults, judged
// by type and numbers, and returns the first.
func hostDevices(devs []specs.LinuxDevice) (int, string) {
	n, first := 0, ""
	for _, d := range devs {
		num := devNum{devType(d.Type), d.Major, d.Minor}
		if d.Type == "p" || defaultDevice(num) {
			continue
		}
		if n == 0 {
			first = d.Path + " (" + num.String() + ")"
		}
		n++
	}
	return n, first
}

func (s *scan) checkDevices(l *specs.Linux) {
	if n, first := hostDevices(l.Devices); n > 0 {
		s.emit(IDHostDevices, "linux.devices", fmt.Sprintf("%d device node(s) beyond the runtime defaults, e.g. %s", n, first))
	}
	first, named := -1, []string(nil)
	for i, d := range l.Devices {
		num := devNum{devType(d.Type), d.Major, d.Minor}
		if diskDevice(num) {
			if first < 0 {
				first = i
			}
			if len(named) < 3 {
				named = append(named, d.Path+" ("+num.String()+")")
			}
		}
	}
	if first >= 0 {
		s.emit(IDHostDiskDevice, "linux.devices["+strconv.Itoa(first)+"]", "disk or memory device nodes, e.g. "+strings.Join(named, ", "))
	}
	if l.Resources == nil {
		return
	}
	all, disks := deviceRules(l.Resources.Devices)
	if all != "" {
		s.emit(IDDeviceCgroupAllowAll, "linux.resources.devices", all)
	}
	if len(disks) > 0 {
		r := l.Resources.Devices[disks[0]]
		s.emit(IDHostDiskDevice, "linux.resources.devices["+strconv.Itoa(disks[0])+"]",
			fmt.Sprintf("%d rule(s) allow disk or memory devices, e.g. %s on %s", len(disks), r.Access, ruleNum(r)))
	}
}

func ruleNum(r specs.LinuxDeviceCgroup) devNum {
	num := devNum{typ: devType(r.Type), major: -1, minor: -1}
	if num.typ == "" {
		num.typ = "a"
	}
	if r.Major != nil {
		num.major = *r.Major
	}
	if r.Minor != nil {
		num.minor = *r.Minor
	}
	return num
}

// deviceRules replays the device cgroup rules in order, as the kernel's
// device controller does, and returns what the end state allows: a
// description when every block or every character device can be read or
// written (however spelled: "a", "b *:*", "c" with no numbers, -1), and
// the indexes of rules still allowing a disk or memory device. Allowing
// only mknod ("m") on everything is what Docker does by default and opens
// nothing.
func deviceRules(rules []specs.LinuxDeviceCgroup) (string, []int) {
	access := map[string]string{"b": "", "c": ""}
	var disks []int
	set := func(typ, acc string, allow bool) {
		for _, c := range "rwm" {
			has := strings.ContainsRune(access[typ], c)
			if strings.ContainsRune(acc, c) {
				has = allow
			}
			if !has {
				access[typ] = strings.ReplaceAll(access[typ], string(c), "")
			} else if !strings.ContainsRune(access[typ], c) {
				access[typ] += string(c)
			}
		}
	}
	for i, r := range rules {
		num := ruleNum(r)
		acc := r.Access
		if acc == "" {
			acc = "rwm"
		}
		if num.major < 0 || num.typ == "a" {
			types := []string{num.typ}
			if num.typ == "a" {
				types = []string{"b", "c"}
			}
			for _, t := range types {
				set(t, acc, r.Allow)
				if !r.Allow {
					disks = slices.DeleteFunc(disks, func(j int) bool { return typeOf(rules[j]) == t })
				}
			}
			continue
		}
		if r.Allow && strings.ContainsAny(acc, "rw") && diskDevice(num) {
			disks = append(disks, i)
		}
	}
	var all []string
	for _, t := range []string{"b", "c"} {
		if strings.ContainsAny(access[t], "rw") {
			name := map[string]string{"b": "block", "c": "character"}[t]
			all = append(all, "every "+name+" device ("+access[t]+")")
		}
	}
	if len(all) == 0 {
		return "", disks
	}
	return "the rules allow " + strings.Join(all, " and "), disks
}

func typeOf(r specs.LinuxDeviceCgroup) string { return ruleNum(r).typ }

// checkIDMappings reports a mapping that makes host ID 0 an ID of the
// container: container root (or another container ID) is host root.
func (s *scan) checkIDMappings(field string, ms []specs.LinuxIDMapping) {
	for i, m := range ms {
		if m.Size > 0 && m.HostID == 0 {
			s.emit(IDMappingHostRoot, field+"["+strconv.Itoa(i)+"]",
				fmt.Sprintf("container ID %d is host ID 0 (%d IDs from host 0)", m.ContainerID, m.Size))
		}
	}
}

// checkSeccompHandoff reports a profile that hands system calls to
// someone else: a user-notification listener outside the node's own
// agents, or a tracer.
func (s *scan) checkSeccompHandoff(sc *specs.LinuxSeccomp) {
	if sc == nil {
		return
	}
	if sc.ListenerPath != "" && !slices.Contains(s.node.listeners, hostPath(sc.ListenerPath)) {
		s.emit(IDSeccompHandoff, "linux.seccomp.listenerPath", sc.ListenerPath+": system calls are answered by whoever listens there, with its privileges")
	}
	for i, r := range sc.Syscalls {
		switch r.Action {
		case specs.ActNotify:
			if sc.ListenerPath == "" {
				s.emit(IDSeccompHandoff, "linux.seccomp.syscalls["+strconv.Itoa(i)+"].action", "SCMP_ACT_NOTIFY with no listener")
			}
		case specs.ActTrace:
			s.emit(IDSeccompHandoff, "linux.seccomp.syscalls["+strconv.Itoa(i)+"].action",
				"SCMP_ACT_TRACE on "+strings.Join(r.Names, ", ")+": a tracer decides these calls")
		}
	}
	if sc.DefaultAction == specs.ActNotify || sc.DefaultAction == specs.ActTrace {
		s.emit(IDSeccompHandoff, "linux.seccomp.defaultAction", string(sc.DefaultAction))
	}
}

// checkScheduling reports real-time priority: a real-time task can starve
// the node's own processes of CPU.
func (s *scan) checkScheduling() {
	spec := s.in.Spec
	if p := spec.Process; p != nil {
		if sc := p.Scheduler; sc != nil {
			switch sc.Policy {
			case specs.SchedFIFO, specs.SchedRR, specs.SchedDeadline:
				s.emit(IDRealtimePriority, "process.scheduler.policy", string(sc.Policy))
			}
		}
		for i, r := range p.Rlimits {
			if (r.Type == "RLIMIT_RTPRIO" && (r.Hard > 0 || r.Soft > 0)) || r.Type == "RLIMIT_RTTIME" {
				s.emit(IDRealtimePriority, "process.rlimits["+strconv.Itoa(i)+"]", fmt.Sprintf("%s hard %d", r.Type, r.Hard))
			}
		}
		if io := p.IOPriority; io != nil && io.Class == specs.IOPRIO_CLASS_RT {
			s.emit(IDRealtimePriority, "process.ioPriority.class", string(io.Class))
		}
	}
	if l := spec.Linux; l != nil && l.Resources != nil && l.Resources.CPU != nil {
		if rt := l.Resources.CPU.RealtimeRuntime; rt != nil && *rt > 0 {
			s.emit(IDRealtimePriority, "linux.resources.cpu.realtimeRuntime", strconv.FormatInt(*rt, 10))
		}
	}
}

// checkLinuxExtras judges the linux fields that reach shared node
// resources: network devices moved in, Intel RDT groups, propagation.
func (s *scan) checkLinuxExtras(l *specs.Linux) {
	if len(l.NetDevices) > 0 {
		names := make([]string, 0, len(l.NetDevices))
		for n := range l.NetDevices {
			names = append(names, n)
		}
		slices.Sort(names)
		s.emit(IDNetDeviceMoved, "linux.netDevices", strings.Join(names, ", ")+" moved from the host into the container")
	}
	if r := l.IntelRdt; r != nil && (r.ClosID != "" || r.L3CacheSchema != "" || r.MemBwSchema != "" || len(r.Schemata) > 0) {
		s.emit(IDIntelRdt, "linux.intelRdt", "closID "+strconv.Quote(r.ClosID)+": cache and memory-bandwidth allocation shared with or taken from the node")
	}
	switch l.RootfsPropagation {
	case "shared", "rshared":
		s.emit(IDMountPropagationShared, "linux.rootfsPropagation", l.RootfsPropagation)
	}
	s.checkIDMappings("linux.uidMappings", l.UIDMappings)
	s.checkIDMappings("linux.gidMappings", l.GIDMappings)
	s.checkSeccompHandoff(l.Seccomp)
}

// checkSelinux reports an SELinux process type that is unconfined.
func (s *scan) checkSelinux(p *specs.Process) {
	parts := strings.Split(p.SelinuxLabel, ":")
	if len(parts) >= 3 && (parts[2] == "spc_t" || parts[2] == "unconfined_t") {
		s.emit(IDSelinuxUnconfined, "process.selinuxLabel", p.SelinuxLabel)
	}
}
