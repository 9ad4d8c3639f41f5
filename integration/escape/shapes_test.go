package escape_test

import (
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
}

// fixtures are the host-side things some shapes mount.
type fixtures struct {
	// DockerSock is the stand-in for a container manager's socket.
	DockerSock string
}

// nonRootUID is the non-root shape's runAsUser.
const nonRootUID = 1000

func shapes() []shape {
	return []shape{
		{ID: "ordinary", Title: "ordinary CRI pod (kubelet defaults: seccomp Unconfined, root)", pod: func(*harness.Pod, fixtures) {}},
		{ID: "privileged", Title: "privileged: true", pod: func(p *harness.Pod, _ fixtures) { p.Privileged = true }},
		{ID: "host-pid", Title: "hostPID: true", pod: func(p *harness.Pod, _ fixtures) { p.HostPID = true }},
		{ID: "host-network", Title: "hostNetwork: true", pod: func(p *harness.Pod, _ fixtures) { p.HostNetwork = true }},
		{ID: "docker-sock", Title: "docker.sock hostPath at /var/run/docker.sock", pod: func(p *harness.Pod, f fixtures) {
			p.Mounts = append(p.Mounts, harness.Mount{Host: f.DockerSock, Container: "/var/run/docker.sock"})
		}},
		{ID: "hostpath-root", Title: "hostPath / at /host (read-write)", pod: func(p *harness.Pod, _ fixtures) {
			p.Mounts = append(p.Mounts, harness.Mount{Host: "/", Container: "/host"})
		}},
		{ID: "cap-sys-admin", Title: "capabilities.add: [SYS_ADMIN]", pod: func(p *harness.Pod, _ fixtures) { p.AddCaps = []string{"SYS_ADMIN"} }},
		{ID: "nonroot-setuid", Title: "runAsUser: 1000, image with a setuid-root binary", pod: func(p *harness.Pod, _ fixtures) {
			uid := int64(nonRootUID)
			p.RunAsUser = &uid
		}},
	}
}

// runtimes are the handlers every shape runs on: plain runc, ward on its
// default policy, and ward sending every pod to gVisor.
func runtimes() []string { return []string{"runc", "ward", "ward-gvisor"} }
