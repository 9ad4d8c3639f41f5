package policy

import (
	"path"
	"strings"
)

// hostPath normalises a bind-mount source for matching: lexically cleaned,
// with /var/run folded into /run (a symlink to it on every distribution ward
// supports), so that "/var/run/docker.sock" and "/run//docker.sock" match the
// same rule.
func hostPath(p string) string {
	p = path.Clean(p)
	if p == "/var/run" || strings.HasPrefix(p, "/var/run/") {
		p = "/run" + p[len("/var/run"):]
	}
	return p
}

// within reports whether p is dir or below it. Both are clean.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

// ContainerSockets are the API sockets of container managers (normalised
// with /var/run as /run). Reaching any one is as good as root on the node.
func ContainerSockets() []string {
	return []string{
		"/run/docker.sock",
		"/run/containerd/containerd.sock",
		"/run/containerd/containerd.sock.ttrpc",
		"/run/crio/crio.sock",
		"/run/cri-dockerd.sock",
		"/run/podman/podman.sock",
		"/run/k3s/containerd/containerd.sock",
		"/run/dockershim.sock",
		"/run/buildkit/buildkitd.sock",
	}
}

// socketExposed returns the container socket that mounting src exposes: the
// socket itself or a directory above it. Rootless managers keep theirs under
// /run/user/<uid>/.
func socketExposed(src string, sockets []string) string {
	for _, s := range sockets {
		if within(s, src) {
			return s
		}
	}
	if within(src, "/run/user") {
		base := path.Base(src)
		if base == "docker.sock" || base == "podman.sock" || src == "/run/user" ||
			strings.Count(src, "/") <= 3 || strings.HasSuffix(src, "/podman") {
			return src
		}
	}
	return ""
}

// sensitiveDir is a host directory whose exposure hands over part of the node.
type sensitiveDir struct {
	path string
	// subtree: everything below is sensitive too (/etc/kubernetes/pki is as
	// bad as /etc). Without it only the directory itself and its parents are
	// (a hostPath of /home/alice/data is ordinary; /home is not).
	subtree bool
}

func sensitiveDirs() []sensitiveDir {
	return []sensitiveDir{
		{"/", false},
		{"/etc", true},
		{"/proc", true},
		{"/sys", true},
		{"/dev", true},
		{"/boot", true},
		{"/lib", true},
		{"/lib64", true},
		{"/usr", true},
		{"/bin", true},
		{"/sbin", true},
		{"/root", true},
		{"/home", false},
		{"/var/lib/kubelet", true},
		{"/var/lib/containerd", true},
		{"/var/lib/docker", true},
		{"/var/lib/containers", true},
		{"/var/lib/etcd", true},
		{"/var/log", false},
		{"/run", false},
		{"/run/containerd", true},
		{"/run/docker", true},
		{"/run/crio", true},
		{"/run/podman", true},
	}
}

// sensitiveExposed returns the sensitive directory that mounting src exposes,
// or "".
func sensitiveExposed(src string, dirs []sensitiveDir) string {
	for _, d := range dirs {
		if within(d.path, src) || (d.subtree && within(src, d.path)) {
			return d.path
		}
	}
	return ""
}
