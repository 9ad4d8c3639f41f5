package escape_test

import (
	"github.com/ward-runtime/ward/integration/escape/probes"
	"github.com/ward-runtime/ward/integration/harness"
)

// shape is a workload shape as a real client produces it: a kubelet-like
// CRI pod with one app container.
type shape struct {
	ID    string
	Title string
	// pod fills in what makes the shape; the caller sets name, handler,
	// command and environment.
	pod func(p *harness.Pod, f fixtures)
	// OnRunc is what plain runc must show for the shape's own probe: the
	// proof that the pod really has the shape and the probe can see it.
	OnRunc map[string]probes.Result
}

// fixtures are the host-side things some shapes mount.
type fixtures struct {
	// DockerSock is the stand-in for a container manager's socket.
	DockerSock string
	// RenamedSock is a world-writable socket at an unfamiliar path whose
	// listener is a process named dockerd.
	RenamedSock string
	// RootAlias is the host's / bind-mounted at an unfamiliar path.
	RootAlias string
}

// nonRootUID is the non-root shape's runAsUser.
const nonRootUID = 1000

func shapes() []shape {
	return []shape{
		{ID: "ordinary", OnRunc: map[string]probes.Result{"raw-socket": probes.Reachable}, Title: "ordinary CRI pod (kubelet defaults: seccomp Unconfined, root)", pod: func(*harness.Pod, fixtures) {}},
		{ID: "privileged", OnRunc: map[string]probes.Result{"core-pattern": probes.Escaped, "cgroup-release-agent": probes.Escaped}, Title: "privileged: true", pod: func(p *harness.Pod, _ fixtures) { p.Privileged = true }},
		{ID: "host-pid", OnRunc: map[string]probes.Result{"host-pid": probes.Escaped}, Title: "hostPID: true", pod: func(p *harness.Pod, _ fixtures) { p.HostPID = true }},
		{ID: "host-network", OnRunc: map[string]probes.Result{"abstract-shim-socket": probes.Escaped}, Title: "hostNetwork: true", pod: func(p *harness.Pod, _ fixtures) { p.HostNetwork = true }},
		{ID: "docker-sock", OnRunc: map[string]probes.Result{"runtime-socket": probes.Escaped}, Title: "docker.sock hostPath at /var/run/docker.sock", pod: func(p *harness.Pod, f fixtures) {
			p.Mounts = append(p.Mounts, harness.Mount{Host: f.DockerSock, Container: "/var/run/docker.sock"})
		}},
		{ID: "hostpath-root", OnRunc: map[string]probes.Result{"host-fs-writable": probes.Escaped}, Title: "hostPath / at /host (read-write)", pod: func(p *harness.Pod, _ fixtures) {
			p.Mounts = append(p.Mounts, harness.Mount{Host: "/", Container: "/host"})
		}},
		{ID: "renamed-socket", OnRunc: map[string]probes.Result{"runtime-socket": probes.Escaped}, Title: "a world-writable socket at an unfamiliar path (bound under another name, then moved), listened on by dockerd", pod: func(p *harness.Pod, f fixtures) {
			p.Mounts = append(p.Mounts, harness.Mount{Host: f.RenamedSock, Container: "/run/app/api.sock"})
		}},
		{ID: "hostpath-root-alias", OnRunc: map[string]probes.Result{"host-fs-writable": probes.Escaped}, Title: "hostPath of the host's / under an unfamiliar name (a bind alias)", pod: func(p *harness.Pod, f fixtures) {
			p.Mounts = append(p.Mounts, harness.Mount{Host: f.RootAlias, Container: "/data"})
		}},
		{ID: "cap-sys-admin", OnRunc: map[string]probes.Result{"mount": probes.Reachable}, Title: "capabilities.add: [SYS_ADMIN]", pod: func(p *harness.Pod, _ fixtures) { p.AddCaps = []string{"SYS_ADMIN"} }},
		{ID: "nonroot-setuid", OnRunc: map[string]probes.Result{"setuid-escalation": probes.Reachable}, Title: "runAsUser: 1000, image with a setuid-root binary", pod: func(p *harness.Pod, _ fixtures) {
			uid := int64(nonRootUID)
			p.RunAsUser = &uid
		}},
	}
}

// runtimes are the handlers every shape runs on: plain runc, ward on its
// default policy, and ward sending every pod to gVisor.
func runtimes() []string { return []string{"runc", "ward", "ward-gvisor"} }
