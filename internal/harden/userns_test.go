package harden

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

func TestUsernsStep(t *testing.T) {
	pool := []userns.Range{{Start: 1 << 30, Size: 100 * userns.BlockSize}}
	st, err := NewUsernsStep(UsernsOptions{Pool: pool, Own: func(src string, _ *policy.Input) bool {
		return strings.HasPrefix(src, "/var/lib/kubelet/pods/")
	}})
	if err != nil {
		t.Fatal(err)
	}
	block := &policy.UsernsInput{HostID: 1 << 30, Size: userns.BlockSize}
	maps := func(host uint32) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: userns.BlockSize}}
	}
	base := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Args: []string{"sh"}},
			Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}}},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/data", Type: "bind", Source: "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/d", Options: []string{"rbind", "rw"}},
				{Destination: "/host", Type: "bind", Source: "/srv/data", Options: []string{"bind", "rw"}},
			},
		}
	}
	kubelet := func(host uint32) *specs.Spec {
		s := base()
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = maps(host), maps(host)
		return s
	}
	for _, tt := range []struct {
		name    string
		spec    *specs.Spec
		in      *policy.UsernsInput
		want    string // error substring; "" for success
		changes int
		check   func(t *testing.T, s *specs.Spec)
	}{
		{name: "new namespace", spec: base(), in: block, changes: 2, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Linux.UIDMappings, maps(1<<30)) || !slices.Equal(s.Linux.GIDMappings, maps(1<<30)) {
				t.Errorf("mappings %v %v", s.Linux.UIDMappings, s.Linux.GIDMappings)
			}
			if !slices.Contains(s.Mounts[1].Options, "ridmap") {
				t.Errorf("the kubelet volume is not idmapped: %v", s.Mounts[1].Options)
			}
			if slices.ContainsFunc(s.Mounts[2].Options, func(o string) bool { return strings.Contains(o, "idmap") }) {
				t.Errorf("a host path was idmapped: %v", s.Mounts[2].Options)
			}
		}},
		{name: "join the sandbox's", spec: base(), in: &policy.UsernsInput{HostID: 1 << 30, Size: userns.BlockSize, Join: "/proc/42/ns/user"}, changes: 2, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Namespaces[2].Path != "/proc/42/ns/user" {
				t.Errorf("namespaces %v", s.Linux.Namespaces)
			}
		}},
		{name: "pod network namespace", spec: func() *specs.Spec {
			s := base()
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"})
			s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "kernel.shm_rmid_forced": "1"}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro"}})
			s.Annotations = map[string]string{bundle.AnnotationContainerType: "sandbox"}
			return s
		}(), in: block, changes: 4, check: func(t *testing.T, s *specs.Spec) {
			if _, ok := s.Linux.Sysctl["net.ipv4.ping_group_range"]; ok || s.Linux.Sysctl["kernel.shm_rmid_forced"] != "1" {
				t.Errorf("sysctls %v: want net.* moved out, the rest kept", s.Linux.Sysctl)
			}
			if m := s.Mounts[3]; m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "rro") || !slices.Contains(m.Options, "ro") {
				t.Errorf("sysfs mount %+v, want a recursively read-only bind of /sys", m)
			}
		}},
		{name: "net sysctls for a joined namespace that is not a sandbox's", spec: func() *specs.Spec {
			s := base()
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/4242/ns/net"})
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			return s
		}(), in: block, want: "has not proved the container's own"},
		{name: "net sysctls for the host's namespace under another name", spec: func() *specs.Spec {
			s := base()
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/innocent"})
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			s.Annotations = map[string]string{bundle.AnnotationContainerType: "sandbox"}
			return s
		}(), in: block, want: "is the host's network namespace"},
		{name: "own network namespace: ping groups narrowed", spec: func() *specs.Spec {
			s := base()
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
			s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}
			return s
		}(), in: block, changes: 3, check: func(t *testing.T, s *specs.Spec) {
			if got := s.Linux.Sysctl["net.ipv4.ping_group_range"]; got != "0 65535" {
				t.Errorf("ping_group_range %q, want 0 65535", got)
			}
		}},
		{name: "no block", spec: base(), want: ErrNoIDBlock.Error()},
		{name: "uid outside the block", spec: func() *specs.Spec { s := base(); s.Process.User.UID = 70000; return s }(), in: block, want: "ID 70000 is outside"},
		{name: "kubelet mapping kept", spec: kubelet(65536 * 7), in: block, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Linux.UIDMappings, maps(65536*7)) {
				t.Errorf("the kubelet's mapping was replaced: %v", s.Linux.UIDMappings)
			}
		}},
		{name: "kubelet mapping to host root", spec: kubelet(0), in: block, want: "holds host root"},
		{name: "kubelet mapping in ward's pool", spec: kubelet(1<<30 + 5*65536), in: block, want: "overlaps ward's ID pool"},
		{name: "new namespace without mappings", spec: kubelet(0), in: nil, want: "without mappings"},
		{name: "host user namespace joined", spec: func() *specs.Spec {
			s := base()
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
			return s
		}(), in: block, want: "joins the host's user namespace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "new namespace without mappings" {
				tt.spec.Linux.UIDMappings = nil
			}
			hostNet := policy.ObjectID{Dev: 4, Ino: 4026531840}
			facts := &policy.NodeFacts{
				Objects:        map[string]policy.HostObject{"/run/netns/innocent": {Kind: policy.KindNamespace, ID: hostNet}},
				HostNamespaces: map[specs.LinuxNamespaceType]policy.ObjectID{specs.NetworkNamespace: hostNet},
			}
			rec := Record{In: &policy.Input{Spec: tt.spec, Userns: tt.in, Workload: bundle.WorkloadOf(tt.spec), Node: facts}, step: st.Name}
			err := st.Apply(tt.spec, &rec)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Changes) != tt.changes {
				t.Errorf("changes %v, want %d", rec.Changes, tt.changes)
			}
			if tt.check != nil {
				tt.check(t, tt.spec)
			}
			again := Record{In: rec.In, step: st.Name}
			if err := st.Apply(tt.spec, &again); err != nil || len(again.Changes) != 0 {
				t.Errorf("second application: %v, %v", again.Changes, err)
			}
		})
	}
}

func TestVerifyMappings(t *testing.T) {
	pool := []userns.Range{{Start: 1 << 30, Size: 10 * userns.BlockSize}}
	m := func(c, h, n uint32) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: c, HostID: h, Size: n}}
	}
	for _, tt := range []struct {
		name       string
		uids, gids []specs.LinuxIDMapping
		want       string
	}{
		{"kubelet block", m(0, 65536*3, 65536), m(0, 65536*3, 65536), ""},
		{"rootless user", m(0, 1000, 1), m(0, 1000, 1), ""},
		{"host root", m(0, 0, 65536), m(0, 65536, 65536), "linux.uidMappings[0]"},
		{"gid root", m(0, 65536, 65536), m(1, 0, 1), "linux.gidMappings[0]"},
		{"inside the pool", m(0, 1<<30+65536, 65536), m(0, 65536, 65536), "overlaps ward's ID pool"},
		{"straddles the pool", m(0, 1<<30-10, 65536), m(0, 65536, 65536), "overlaps"},
		{"empty", m(0, 65536, 0), m(0, 65536, 1), "empty"},
		{"past 32 bits", m(0, 1<<32-10, 65536), m(0, 65536, 1), "past the 32-bit"},
	} {
		err := VerifyMappings(tt.uids, tt.gids, pool)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
