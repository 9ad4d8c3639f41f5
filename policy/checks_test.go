package policy

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/capability"
)

// cleanSpec is a spec with no findings at all: every namespace of its own,
// a user namespace, baseline capabilities, seccomp, no_new_privs, a non-root
// user, read-only rootfs and /sys, masked paths and limits.
func cleanSpec() *specs.Spec {
	limit := int64(256 << 20)
	pids := int64(1024)
	return &specs.Spec{
		Version: "1.2.0",
		Process: &specs.Process{
			User: specs.User{UID: 1000, GID: 1000},
			Args: []string{"/app"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  capability.Baseline(),
				Effective: capability.Baseline(),
				Permitted: capability.Baseline(),
			},
			NoNewPrivileges: true,
		},
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro"}},
			{Destination: "/data", Type: "bind", Source: "/var/lib/kubelet/pods/u-1/volumes/kubernetes.io~empty-dir/data", Options: []string{"rbind"}},
		},
		Annotations: map[string]string{bundle.AnnotationSandboxUID: "u-1"},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.UserNamespace},
				{Type: specs.CgroupNamespace},
			},
			Seccomp:       &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			MaskedPaths:   CoreMaskedPaths(),
			ReadonlyPaths: CoreReadonlyPaths(),
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: &limit},
				Pids:   &specs.LinuxPids{Limit: &pids},
			},
		},
	}
}

func testEvaluator(t testing.TB) *Evaluator {
	t.Helper()
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return NewEvaluator(p)
}

func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Check.ID)
	}
	return out
}

func removeNS(s *specs.Spec, typ specs.LinuxNamespaceType) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == typ })
}

func TestCleanSpecHasNoFindings(t *testing.T) {
	s := cleanSpec()
	d := testEvaluator(t).Evaluate(Input{Spec: s, Workload: bundle.WorkloadOf(s)})
	if len(d.Findings) != 0 || d.Action != Harden {
		t.Fatalf("clean spec: findings %v, action %s", ids(d.Findings), d.Action)
	}
}

func TestChecks(t *testing.T) {
	bind := func(src, dst string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append([]string{"rbind"}, opts...)}
	}
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		want   []string // exactly these finding IDs, in any order
		path   string   // the first finding's path
	}{
		{"host pid", func(s *specs.Spec) { removeNS(s, specs.PIDNamespace) }, []string{IDHostPID}, "linux.namespaces"},
		{"host ipc", func(s *specs.Spec) { removeNS(s, specs.IPCNamespace) }, []string{IDHostIPC}, "linux.namespaces"},
		{"host network", func(s *specs.Spec) { removeNS(s, specs.NetworkNamespace) }, []string{IDHostNetwork}, "linux.namespaces"},
		{"host uts", func(s *specs.Spec) { removeNS(s, specs.UTSNamespace) }, []string{IDHostUTS}, "linux.namespaces"},
		{"host user", func(s *specs.Spec) { removeNS(s, specs.UserNamespace) }, []string{IDHostUser}, "linux.namespaces"},
		{"host cgroup", func(s *specs.Spec) { removeNS(s, specs.CgroupNamespace) }, []string{IDHostCgroup}, "linux.namespaces"},
		{"init pid namespace by path", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }, []string{IDHostPID}, "linux.namespaces[0].path"},
		{"joined namespace", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/4242/ns/net" }, []string{IDNamespaceJoined}, "linux.namespaces[1].path"},
		{"docker.sock", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/var/run/docker.sock", "/var/run/docker.sock")) },
			[]string{IDContainerSocketMount, IDHostPathMount}, "mounts[4].source"},
		{"containerd socket dir", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/run/containerd", "/c", "ro")) },
			[]string{IDContainerSocketMount, IDSensitiveHostPath, IDHostPathMount}, "mounts[4].source"},
		{"crio socket", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/var/run/crio/crio.sock", "/s")) },
			[]string{IDContainerSocketMount, IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"cri-dockerd socket", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/run/cri-dockerd.sock", "/s")) },
			[]string{IDContainerSocketMount, IDHostPathMount}, "mounts[4].source"},
		{"podman socket", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/run/podman/podman.sock", "/s")) },
			[]string{IDContainerSocketMount, IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"rootless podman socket", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/run/user/1000/podman/podman.sock", "/s")) },
			[]string{IDContainerSocketMount, IDHostPathMount}, "mounts[4].source"},
		{"/var/run writable", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/var/run", "/hostrun")) },
			[]string{IDContainerSocketMount, IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"host root", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/", "/host")) },
			[]string{IDContainerSocketMount, IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"/etc read-only", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/etc", "/host-etc", "ro")) },
			[]string{IDSensitiveHostPath, IDHostPathMount}, "mounts[4].source"},
		{"below /etc writable", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/etc/kubernetes/pki", "/pki")) },
			[]string{IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"parent of kubelet", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/var/lib", "/vl", "ro")) },
			[]string{IDSensitiveHostPath, IDHostPathMount}, "mounts[4].source"},
		{"/proc", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/proc", "/host/proc")) },
			[]string{IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"/sys, /dev, /boot, /usr, /lib, /root, /home", func(s *specs.Spec) {
			for _, p := range []string{"/sys", "/dev", "/boot", "/usr", "/lib", "/root", "/home"} {
				s.Mounts = append(s.Mounts, bind(p, "/h"+p, "ro"))
			}
		}, []string{IDSensitiveHostPath, IDHostPathMount}, "mounts[4].source"},
		{"kubelet root", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/var/lib/kubelet", "/k")) },
			[]string{IDSensitiveHostPathWritable, IDHostPathMount}, "mounts[4].source"},
		{"another pod's volume", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, bind("/var/lib/kubelet/pods/u-2/volumes/kubernetes.io~secret/token", "/stolen", "ro"))
		}, []string{IDSensitiveHostPath, IDHostPathMount}, "mounts[4].source"},
		{"ward's launcher", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, bind("/usr/local/bin/ward-init", "/.ward/ward-init", "ro"))
		}, nil, ""},
		{"not ward's launcher", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/etc", "/.ward/ward-init", "ro")) },
			[]string{IDSensitiveHostPath, IDHostPathMount}, "mounts[4].source"},
		{"ordinary hostPath", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/srv/data", "/data2")) },
			[]string{IDHostPathMount}, "mounts[4].source"},
		{"home subdirectory", func(s *specs.Spec) { s.Mounts = append(s.Mounts, bind("/home/alice/project", "/src")) },
			[]string{IDHostPathMount}, "mounts[4].source"},
		{"cap sys admin", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		},
			[]string{IDCapSysAdmin}, "process.capabilities"},
		{"dangerous caps", func(s *specs.Spec) {
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO",
				"CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON", "CAP_SYS_BOOT", "CAP_SYSLOG")
		}, []string{IDCapSysModule, IDCapSysPtrace, IDCapSysRawio, IDCapDacReadSearch, IDCapNetAdmin, IDCapBPF, IDCapPerfmon, IDCapSysBoot, IDCapSyslog}, "process.capabilities"},
		{"net raw", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_NET_RAW"} }, []string{IDCapNetRaw}, "process.capabilities"},
		{"beyond baseline", func(s *specs.Spec) {
			s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SYS_TIME", "CAP_IPC_LOCK")
		},
			[]string{IDCapNotBaseline}, "process.capabilities"},
		// The inheritable set survives a bounding set without the
		// capability: exec of a file whose inheritable bit is set (the
		// image author sets those) grants it.
		{"inheritable counts", func(s *specs.Spec) { s.Process.Capabilities.Inheritable = []string{"CAP_SYS_ADMIN"} }, []string{IDCapSysAdmin}, "process.capabilities"},
		{"seccomp missing", func(s *specs.Spec) { s.Linux.Seccomp = nil }, []string{IDSeccompUnconfined}, "linux.seccomp"},
		{"seccomp default allow", func(s *specs.Spec) { s.Linux.Seccomp.DefaultAction = specs.ActAllow }, []string{IDSeccompDefaultAllow}, "linux.seccomp.defaultAction"},
		{"seccomp empty", func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{} }, []string{IDSeccompUnconfined}, "linux.seccomp"},
		{"seccomp default log", func(s *specs.Spec) { s.Linux.Seccomp.DefaultAction = specs.ActLog }, []string{IDSeccompDefaultAllow}, "linux.seccomp.defaultAction"},
		{"no new privs off", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, []string{IDNoNewPrivsOff}, "process.noNewPrivileges"},
		{"uid 0", func(s *specs.Spec) { s.Process.User.UID = 0 }, []string{IDRunAsRoot}, "process.user.uid"},
		{"writable rootfs", func(s *specs.Spec) { s.Root.Readonly = false }, []string{IDWritableRootfs}, "root.readonly"},
		{"masked emptied", func(s *specs.Spec) { s.Linux.MaskedPaths = nil }, []string{IDMaskedPathsEmptied}, "linux.maskedPaths"},
		{"masked incomplete", func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/proc/kcore"} }, []string{IDMaskedPathsEmptied}, "linux.maskedPaths"},
		{"readonly emptied", func(s *specs.Spec) { s.Linux.ReadonlyPaths = []string{} }, []string{IDReadonlyPathsEmptied}, "linux.readonlyPaths"},
		{"sysfs rw", func(s *specs.Spec) { s.Mounts[1].Options = []string{"nosuid", "rw"} }, []string{IDSysfsWritable}, "mounts[1].options"},
		{"cgroupfs rw", func(s *specs.Spec) { s.Mounts[2].Options = nil }, []string{IDCgroupfsWritable}, "mounts[2].options"},
		{"cgroup2 rw", func(s *specs.Spec) { s.Mounts[2].Type = "cgroup2"; s.Mounts[2].Options = []string{"rw"} }, []string{IDCgroupfsWritable}, "mounts[2].options"},
		{"host device", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null"}, {Path: "/dev/sda", Type: "b", Major: 8}}
		}, []string{IDHostDevices, IDHostDiskDevice}, "linux.devices"},
		{"default devices only", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9}}
		}, nil, ""},
		{"a disk named like /dev/null", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "b", Major: 8, Minor: 0}}
		}, []string{IDHostDevices, IDHostDiskDevice}, "linux.devices"},
		{"every block device allowed by -1", func(s *specs.Spec) {
			minus := int64(-1)
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "b", Major: &minus, Access: "rw"}}
		}, []string{IDDeviceCgroupAllowAll}, "linux.resources.devices"},
		{"mknod on everything opens nothing", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Access: "m"}, {Allow: true, Type: "b", Access: "m"}}
		}, nil, ""},
		{"device cgroup allow all", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Access: "rwm"}}
		}, []string{IDDeviceCgroupAllowAll}, "linux.resources.devices"},
		{"device cgroup deny after allow", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Access: "rwm"}}
		}, nil, ""},
		{"safe sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_local_port_range": "1024 65000"} }, nil, ""},
		{"unsafe sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.msgmax": "65536"} }, []string{IDUnsafeSysctl}, `linux.sysctl["kernel.msgmax"]`},
		{"cr8escape", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/tmp/x"}
		}, []string{IDSysctlInjection}, `linux.sysctl["kernel.shm_rmid_forced"]`},
		{"proc self fd cwd", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/fd/7" }, []string{IDProcFDCwd}, "process.cwd"},
		{"proc pid fd cwd", func(s *specs.Spec) { s.Process.Cwd = "/proc/1/task/1/fd/9" }, []string{IDProcFDCwd}, "process.cwd"},
		{"thread-self fd cwd", func(s *specs.Spec) { s.Process.Cwd = "/proc/thread-self/fd/" }, []string{IDProcFDCwd}, "process.cwd"},
		{"fd dir outside proc", func(s *specs.Spec) { s.Process.Cwd = "/srv/fd" }, nil, ""},
		{"apparmor unconfined", func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" }, []string{IDApparmorUnconfined}, "process.apparmorProfile"},
		{"no memory limit", func(s *specs.Spec) { s.Linux.Resources.Memory = nil }, []string{IDNoMemoryLimit}, "linux.resources.memory.limit"},
		{"no pids limit", func(s *specs.Spec) { s.Linux.Resources.Pids.Limit = nil }, []string{IDNoPidsLimit}, "linux.resources.pids.limit"},
		{"privileged", func(s *specs.Spec) {
			all := capability.All()
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			s.Mounts[1].Options = []string{"rw"}
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}, []string{IDSysfsWritable, IDCapSysAdmin, IDCapSysModule, IDCapSysPtrace, IDCapSysRawio, IDCapDacReadSearch, IDCapNetAdmin,
			IDCapBPF, IDCapPerfmon, IDCapSysBoot, IDCapSyslog, IDCapNetRaw, IDCapNotBaseline, IDMaskedPathsEmptied, IDReadonlyPathsEmptied,
			IDDeviceCgroupAllowAll, IDPrivileged}, "mounts[1].options"},
	}
	e := testEvaluator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cleanSpec()
			tt.mutate(s)
			d := e.Evaluate(Input{Spec: s, Workload: bundle.WorkloadOf(s)})
			got := ids(d.Findings)
			gotSet, wantSet := slices.Clone(got), slices.Clone(tt.want)
			slices.Sort(gotSet)
			gotSet = slices.Compact(gotSet)
			slices.Sort(wantSet)
			if !slices.Equal(gotSet, wantSet) {
				t.Fatalf("findings = %v, want %v", got, tt.want)
			}
			if len(d.Findings) > 0 && d.Findings[0].Path != tt.path {
				t.Errorf("first finding's path = %q, want %q", d.Findings[0].Path, tt.path)
			}
			for _, f := range d.Findings {
				if f.Detail == "" || f.Check.Summary == "" {
					t.Errorf("finding %s has no detail or summary", f.Check.ID)
				}
			}
		})
	}
}

func TestHostPathsResolved(t *testing.T) {
	s := cleanSpec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/tmp/innocent", Options: []string{"rbind"}})
	e := testEvaluator(t)
	d := e.Evaluate(Input{Spec: s, HostPaths: map[string]string{"/tmp/innocent": "/run/containerd/containerd.sock"}})
	if !slices.Contains(ids(d.Findings), IDContainerSocketMount) {
		t.Fatalf("a link to containerd's socket was not seen: %v", ids(d.Findings))
	}
	if d.Action != Reject {
		t.Errorf("action = %s, want reject", d.Action)
	}
}

func TestCatalogIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range catalog() {
		if seen[c.ID] {
			t.Errorf("duplicate check %s", c.ID)
		}
		seen[c.ID] = true
		if c.Summary == "" {
			t.Errorf("%s: no summary", c.ID)
		}
		if c.ID != IDPodContextUnknown && len(c.Attack) == 0 {
			t.Errorf("%s: no ATT&CK technique", c.ID)
		}
		if c.FixedBy != "" && !slices.Contains(Steps(), c.FixedBy) {
			t.Errorf("%s: fixed by unknown step %q", c.ID, c.FixedBy)
		}
	}
	for _, id := range dangerousCaps() {
		if !seen[id] {
			t.Errorf("dangerous capability maps to unknown check %s", id)
		}
	}
}
