package harden

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// UsernsOptions configure the user-namespace step.
type UsernsOptions struct {
	// Pool is the host ID pool ward allocates from. A mapping the
	// container manager already made (a pod with hostUsers: false) must
	// not reach into it, or two pods could share IDs.
	Pool []userns.Range
	// Own reports whether a bind source is provably the container's own
	// (policy.Evaluator.Own): this pod's volumes, this sandbox's or
	// container's runtime files, a manager's named volume. Only those are
	// reached through idmapped mounts; everything else is a host path and
	// stays unmapped, as in Kubernetes' hostUsers: false.
	Own func(src string, in *policy.Input) bool
}

// ErrNoIDBlock is returned when a container is to get a user namespace
// but its front door allocated no ID block for it.
var ErrNoIDBlock = errors.New("no user-namespace ID block was allocated for this container (the front door has no ID pool configured); configure the pool, or exempt the workload with an exemption that skips \"userns\"")

// NewUsernsStep returns the step that gives a hardened container a user
// namespace: container IDs 0-65535 map to the block of host IDs its front
// door allocated (policy.Input.Userns), so that root in the container is
// an unprivileged ID on the host.
//
//   - A spec without a user namespace gets one with that mapping; a pod's
//     app container joins its sandbox's namespace (UsernsInput.Join).
//   - A spec that already has one with mappings (a pod the kubelet runs
//     with hostUsers: false, a rootless container) keeps it after
//     verification: host ID 0 unmapped, nothing in ward's pool.
//   - Bind mounts of the container's own volumes (its pod's hosts file,
//     resolv.conf, emptyDirs, tokens; proved by pod UID, sandbox or
//     container ID) get runc's idmap option, so that their files keep
//     the owners they have on disk as seen from the container. Host paths
//     do not: a host-root-owned file there stays out of container root's
//     reach.
//
// The root filesystem is the front door's: it mounts it idmapped before
// the runtime starts (see userns.IdmapRootfs).
func NewUsernsStep(o UsernsOptions) (*Step, error) {
	if o.Own == nil {
		return nil, errors.New("building userns step: no own-volume test")
	}
	u := &usernsStep{o: o}
	return &Step{Name: policy.StepUserns, Apply: u.apply}, nil
}

type usernsStep struct{ o UsernsOptions }

func (u *usernsStep) apply(s *specs.Spec, rec *Record) error {
	l := linux(s)
	var in *policy.UsernsInput
	if rec.In != nil {
		in = rec.In.Userns
	}
	i := slices.IndexFunc(l.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace })
	if i >= 0 && !u.ours(l, i, in) {
		ns := l.Namespaces[i]
		switch {
		case ns.Path != "" && path.Clean(ns.Path) == "/proc/1/ns/user":
			return fmt.Errorf("linux.namespaces[%d].path: joins the host's user namespace", i)
		case ns.Path != "":
			// A pod's app container joining the sandbox's namespace,
			// which was verified or made when the sandbox was created.
			return nil
		}
		return u.verify(l)
	}
	if in == nil {
		return ErrNoIDBlock
	}
	if in.Size == 0 || uint64(in.HostID)+uint64(in.Size) > 1<<32 {
		return fmt.Errorf("user-namespace ID block %d+%d is empty or past the 32-bit ID space", in.HostID, in.Size)
	}
	if err := fits(s.Process, in.Size); err != nil {
		return err
	}
	block := userns.Range{Start: in.HostID, Size: in.Size}
	if i < 0 {
		l.Namespaces = append(slices.Clip(l.Namespaces), specs.LinuxNamespace{Type: specs.UserNamespace, Path: in.Join})
		l.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: in.HostID, Size: in.Size}}
		l.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: in.HostID, Size: in.Size}}
		what := "added a user namespace: container UIDs and GIDs 0-" + strconv.FormatUint(uint64(in.Size)-1, 10) + " are host " + block.String() + "; container root is host UID " + strconv.FormatUint(uint64(in.HostID), 10)
		if in.Join != "" {
			what = "joins the pod's user namespace at " + in.Join + " (host IDs " + block.String() + ")"
		}
		if in.Placeholder {
			what += " (placeholder block: the front door allocates one at create)"
		}
		rec.Add("linux.namespaces", what)
	}
	u.idmapVolumes(s, rec)
	if err := foreignNetns(s, rec); err != nil {
		return err
	}
	clampPingGroups(s, in.Size, rec)
	return nil
}

// clampPingGroups narrows net.ipv4.ping_group_range to the namespace's
// groups: the kernel refuses a range with groups the writer's user
// namespace does not map, and Docker and containerd ask for 0-2147483647.
func clampPingGroups(s *specs.Spec, size uint32, rec *Record) {
	const key = "net.ipv4.ping_group_range"
	v, ok := s.Linux.Sysctl[key]
	if !ok {
		return
	}
	f := strings.Fields(v)
	if len(f) != 2 {
		return
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 32)
	hi, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil || hi < uint64(size) || lo > hi {
		return
	}
	want := strconv.FormatUint(lo, 10) + " " + strconv.FormatUint(uint64(size)-1, 10)
	if lo >= uint64(size) {
		// No group of the namespace is in the range: none may ping.
		want = "1 0"
	}
	sysctl := make(map[string]string, len(s.Linux.Sysctl))
	for k, x := range s.Linux.Sysctl {
		sysctl[k] = x
	}
	sysctl[key] = want
	s.Linux.Sysctl = sysctl
	rec.Add("linux.sysctl", key+" narrowed from \""+v+"\" to \""+want+"\", the groups the user namespace maps")
}

// foreignNetns adapts a container that joins a network namespace it does
// not create (a CRI pod's, made by the CNI plugins; Docker's), which the
// host's user namespace owns:
//
//   - the kernel lets a user namespace mount sysfs only if it owns the
//     network namespace, so the sysfs mount becomes a recursively read-only
//     bind of the host's /sys (recursive because a user namespace may not
//     bind a tree without its locked submounts), as `runc spec --rootless`
//     does; it shows the host's view of sysfs, its network devices among
//     it, read-only, with the spec's masked paths still applied;
//   - container root may not write that namespace's net.* sysctls, so they
//     leave the spec and the front door sets them in the namespace itself
//     (userns.SetNetSysctls) before the container starts.
func foreignNetns(s *specs.Spec, rec *Record) error {
	i := slices.IndexFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	if i >= 0 && s.Linux.Namespaces[i].Path == "" {
		return nil
	}
	var moved []string
	for k := range s.Linux.Sysctl {
		if strings.HasPrefix(k, "net.") {
			moved = append(moved, k)
		}
	}
	if len(moved) > 0 {
		// ward sets these itself, as root: only in a namespace proved the
		// pod's own, the one the container manager made for a sandbox.
		if i < 0 || rec.In == nil || rec.In.Workload.Kind != bundle.Sandbox {
			return fmt.Errorf("linux.sysctl: %s for a network namespace ward has not proved the container's own (only a pod sandbox's is): refusing to set them", strings.Join(moved, ", "))
		}
		if f := rec.In.Node; f != nil {
			if o, ok := f.Objects[s.Linux.Namespaces[i].Path]; ok && o.Kind == policy.KindNamespace && o.ID == f.HostNamespaces[specs.NetworkNamespace] {
				return fmt.Errorf("linux.namespaces[%d].path: %s is the host's network namespace: refusing to set sysctls in it", i, s.Linux.Namespaces[i].Path)
			}
		}
		slices.Sort(moved)
		sysctl := make(map[string]string, len(s.Linux.Sysctl))
		for k, v := range s.Linux.Sysctl {
			if !strings.HasPrefix(k, "net.") {
				sysctl[k] = v
			}
		}
		s.Linux.Sysctl = sysctl
		rec.Add("linux.sysctl", strings.Join(moved, ", ")+" set by ward in the pod's network namespace instead: a user namespace cannot write the sysctls of a network namespace it does not own")
	}
	for j := range s.Mounts {
		m := &s.Mounts[j]
		if m.Type != "sysfs" {
			continue
		}
		*m = specs.Mount{Destination: m.Destination, Type: "bind", Source: "/sys", Options: []string{"rbind", "ro", "rro", "nosuid", "nodev", "noexec"}}
		rec.Add("mounts["+strconv.Itoa(j)+"]", "sysfs at "+m.Destination+" is a recursively read-only bind of the host's /sys: a user namespace cannot mount sysfs for a network namespace it does not own")
	}
	return nil
}

// ours reports whether the user namespace at i is the one this step
// makes for in, so that applying the step twice changes nothing.
func (u *usernsStep) ours(l *specs.Linux, i int, in *policy.UsernsInput) bool {
	if in == nil || l.Namespaces[i].Path != in.Join {
		return false
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: in.HostID, Size: in.Size}}
	return slices.Equal(l.UIDMappings, want) && slices.Equal(l.GIDMappings, want)
}

// verify checks a mapping the container manager made.
func (u *usernsStep) verify(l *specs.Linux) error {
	if len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0 {
		return errors.New("linux.uidMappings/gidMappings: a new user namespace without mappings")
	}
	return VerifyMappings(l.UIDMappings, l.GIDMappings, u.o.Pool)
}

// VerifyMappings checks the ID mappings of a user namespace ward did not
// make: none may reach host ID 0 (root) or into pool, ward's own range.
// Lower IDs are allowed: a rootless container maps its user's own ID.
func VerifyMappings(uids, gids []specs.LinuxIDMapping, pool []userns.Range) error {
	for _, set := range []struct {
		field string
		maps  []specs.LinuxIDMapping
	}{{"linux.uidMappings", uids}, {"linux.gidMappings", gids}} {
		for i, m := range set.maps {
			at := set.field + "[" + strconv.Itoa(i) + "]"
			if m.Size == 0 || uint64(m.HostID)+uint64(m.Size) > 1<<32 {
				return fmt.Errorf("%s: host range %d+%d is empty or past the 32-bit ID space", at, m.HostID, m.Size)
			}
			r := userns.Range{Start: m.HostID, Size: m.Size}
			if m.HostID == 0 {
				return fmt.Errorf("%s: maps container ID %d to host %s, which holds host root (UID/GID 0)", at, m.ContainerID, r)
			}
			for _, p := range pool {
				if p.Overlaps(r) {
					return fmt.Errorf("%s: host %s overlaps ward's ID pool %s", at, r, p)
				}
			}
		}
	}
	return nil
}

// fits refuses a process whose IDs the namespace cannot map: runc would
// fail later with a less clear error.
func fits(p *specs.Process, size uint32) error {
	if p == nil {
		return nil
	}
	ids := []uint32{p.User.UID, p.User.GID}
	ids = append(ids, p.User.AdditionalGids...)
	for _, id := range ids {
		if id >= size {
			return fmt.Errorf("process.user: ID %d is outside the user namespace's %d IDs", id, size)
		}
	}
	return nil
}

// idmapVolumes adds runc's idmap option to bind mounts of runtime-managed
// volumes.
func (u *usernsStep) idmapVolumes(s *specs.Spec, rec *Record) {
	if rec.In == nil {
		return
	}
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if !isBindMount(m) || slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap") {
			continue
		}
		if !u.o.Own(m.Source, rec.In) {
			continue
		}
		opt := "idmap"
		if slices.Contains(m.Options, "rbind") {
			opt = "ridmap"
		}
		m.Options = append(slices.Clip(m.Options), opt)
		rec.Add("mounts["+strconv.Itoa(i)+"].options", "runtime-managed volume "+m.Destination+" idmapped ("+opt+")")
	}
}

func isBindMount(m *specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}
