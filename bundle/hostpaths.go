package bundle

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// HostPaths resolves the symbolic links in the sources of s's bind mounts on
// this host, so that a link such as /tmp/innocent -> /run/docker.sock is
// judged by where it leads. Sources that do not exist or have no links are
// left out; the checks then match them lexically. The runtime resolves the
// same links when it mounts, a moment later; ward's verdict holds unless the
// node's own files change in between, which needs root on the node.
func HostPaths(s *specs.Spec) map[string]string {
	var out map[string]string
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if !filepath.IsAbs(m.Source) || !IsBindMount(m) {
			continue
		}
		real, err := filepath.EvalSymlinks(m.Source)
		if err != nil || real == filepath.Clean(m.Source) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[m.Source] = real
	}
	return out
}

// IsBindMount reports whether m is a bind mount, by type or option, as runc
// reads it.
func IsBindMount(m *specs.Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}
