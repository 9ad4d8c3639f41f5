package policy

// What other ward packages need of the checks' node facts to judge the
// same shapes elsewhere (ward policy export writes them into admission
// policies). Values are copies; the checks keep their own.

// SensitiveDir is a host directory whose exposure ward reports.
type SensitiveDir struct {
	Path string
	// Subtree is true when every path below Path counts too; otherwise
	// only Path itself and its parents do.
	Subtree bool
}

// SensitiveDirs lists the sensitive host directories, "/" first.
func SensitiveDirs() []SensitiveDir {
	dirs := sensitiveDirs()
	out := make([]SensitiveDir, len(dirs))
	for i, d := range dirs {
		out[i] = SensitiveDir{Path: d.path, Subtree: d.subtree}
	}
	return out
}

// SafeSysctls is the Pod Security Standards baseline allow-list
// (Kubernetes 1.32), in dotted form.
func SafeSysctls() []string {
	return []string{
		"kernel.shm_rmid_forced",
		"net.ipv4.ip_local_port_range",
		"net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.tcp_syncookies",
		"net.ipv4.ping_group_range",
		"net.ipv4.ip_local_reserved_ports",
		"net.ipv4.tcp_keepalive_time",
		"net.ipv4.tcp_fin_timeout",
		"net.ipv4.tcp_keepalive_intvl",
		"net.ipv4.tcp_keepalive_probes",
		"net.ipv4.tcp_rmem",
		"net.ipv4.tcp_wmem",
	}
}
