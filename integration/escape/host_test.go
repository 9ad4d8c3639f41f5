package escape_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// hostState is the host state the probes could touch, read in the test's
// (the host's) namespaces: kernel settings the probes open for writing, the
// cgroup v1 release agents and hierarchies, the mount table, files under
// /etc, the module list, the hostname and the names in /, and leftovers of
// the drift probe. Each key maps to a value or a digest.
type hostState map[string]string

// volatileMountDirs hold the mounts of tests and containers that run on
// this machine beside this one (other packages, other sessions): their
// mounts come and go whatever this test does.
var volatileMountDirs = []string{"/tmp/", "/var/tmp/", "/run/", "/var/run/", "/var/lib/docker/", "/var/lib/containers/"}

func snapshotHost() hostState {
	s := hostState{}
	for _, p := range []string{
		"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/sysrq", "/proc/sys/kernel/modprobe",
		"/proc/sys/kernel/kptr_restrict", "/proc/sys/kernel/dmesg_restrict", "/proc/sys/vm/overcommit_memory",
		"/proc/sys/kernel/unprivileged_bpf_disabled", "/proc/sys/kernel/perf_event_paranoid",
		"/sys/kernel/mm/transparent_hugepage/enabled", "/proc/modules",
	} {
		s[p] = readOrErr(p)
	}
	agents, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	for _, p := range agents {
		s[p] = readOrErr(p)
	}
	// Every cgroup v1 hierarchy the host has, named ones too: a probe's
	// mounted hierarchy that outlived its unmount would show here.
	var hier []string
	for _, l := range strings.Split(readOrErr("/proc/self/cgroup"), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 {
			hier = append(hier, f[0]+":"+f[1])
		}
	}
	s["cgroup hierarchies"] = strings.Join(hier, " ")
	s["mounts"] = hostMounts()
	for _, p := range []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/fstab", "/etc/crontab"} {
		s[p] = digest(p)
	}
	host, _ := os.Hostname()
	s["hostname"] = host
	names, _ := os.ReadDir("/")
	var list []string
	for _, n := range names {
		list = append(list, n.Name())
	}
	s["/ entries"] = strings.Join(list, " ")
	var drift []string
	for _, d := range []string{"/", "/tmp", "/var/tmp", "/dev/shm", "/run"} {
		m, _ := filepath.Glob(filepath.Join(d, ".ward-probe-drift-*"))
		drift = append(drift, m...)
	}
	s["drift leftovers"] = strings.Join(drift, " ")
	return s
}

// hostMounts is the host's mount table (mount point, type, source,
// options) without the directories other tests use.
func hostMounts() string {
	var out []string
	for _, l := range strings.Split(readOrErr("/proc/1/mountinfo"), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 6 || len(b) < 3 {
			continue
		}
		point := a[4]
		volatile := false
		for _, d := range volatileMountDirs {
			if strings.HasPrefix(point+"/", d) {
				volatile = true
			}
		}
		if !volatile {
			out = append(out, strings.Join([]string{point, b[0], b[1], a[5], b[2]}, " "))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func readOrErr(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(data))
}

func digest(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return "error: " + err.Error()
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// diff lists what changed between two snapshots.
func (s hostState) diff(after hostState) []string {
	var out []string
	keys := map[string]bool{}
	for k := range s {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if s[k] != after[k] {
			out = append(out, fmt.Sprintf("%s: before %q, after %q", k, s[k], after[k]))
		}
	}
	return out
}
