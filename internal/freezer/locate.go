package freezer

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Locate finds the cgroup of container id, whose init process is pid and
// whose spec says cgroupsPath (linux.cgroupsPath, "" when unset), in h.
func Locate(h Hierarchy, id string, pid int, cgroupsPath string) (*Cgroup, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("container %s: no init pid (%d): is it running?", id, pid)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("container %s: reading its init's cgroups: %w", id, err)
	}
	return Resolve(h, id, cgroupsPath, string(b))
}

// Resolve is Locate on the content of the init process's /proc/<pid>/cgroup.
//
// cgroupsPath is read as runc reads it. The systemd form "slice:prefix:name"
// is the unit prefix-name.scope (or name itself when it is a .slice) under
// the slice, "" meaning system.slice and "-" the root slice, each dash of a
// slice's name one level down (a-b.slice is /a.slice/a-b.slice). Any other
// value is a cgroupfs path: absolute below the hierarchy's root, or
// relative below the cgroup the runtime itself ran in. An empty
// cgroupsPath is runc's default for either driver: the relative path <id>
// or /system.slice/runc-<id>.scope.
//
// The answer must hold the init process: its cgroup must be the resolved
// one or below it (a container may make cgroups of its own). A relative
// path is found in the init's cgroup by its last occurrence: ward would
// rather freeze too little than another container.
func Resolve(h Hierarchy, id, cgroupsPath, procCgroup string) (*Cgroup, error) {
	own, err := ownCgroup(h, procCgroup)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	cands, err := candidates(id, cgroupsPath)
	if err != nil {
		return nil, fmt.Errorf("container %s: linux.cgroupsPath: %w", id, err)
	}
	for _, c := range cands {
		p, ok := match(own, c)
		if !ok {
			continue
		}
		cg, err := h.Cgroup(p)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		return cg, nil
	}
	return nil, fmt.Errorf("container %s: its init is in cgroup %s, which is not where linux.cgroupsPath %q puts it (%s)",
		id, own, cgroupsPath, strings.Join(cands, " or "))
}

// ownCgroup picks h's line from a /proc/<pid>/cgroup: the one listing the
// freezer controller (v1) or the unified one ("0::", v2).
func ownCgroup(h Hierarchy, procCgroup string) (string, error) {
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (h.Version == 2 && parts[0] == "0" && parts[1] == "") ||
			(h.Version == 1 && slices.Contains(strings.Split(parts[1], ","), "freezer")) {
			p := parts[2]
			if !path.IsAbs(p) {
				return "", fmt.Errorf("its cgroup %q is outside this process's cgroup namespace", p)
			}
			// A cgroup removed after the process left it reads with a
			// " (deleted)" suffix; the process is somewhere else now.
			if strings.HasSuffix(p, " (deleted)") {
				return "", fmt.Errorf("its cgroup %s was deleted", p)
			}
			return path.Clean(p), nil
		}
	}
	return "", fmt.Errorf("its init is in no cgroup v%d freezer hierarchy", h.Version)
}

// candidates are the cgroup paths cgroupsPath can mean; a relative one is
// relative to the runtime's cgroup, unknown here.
func candidates(id, cgroupsPath string) ([]string, error) {
	switch {
	case cgroupsPath == "":
		return []string{id, systemdPath("system.slice", "runc", id)}, nil
	case strings.Contains(cgroupsPath, ":"):
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%q: the systemd form is slice:prefix:name", cgroupsPath)
		}
		slice, prefix, name := parts[0], parts[1], parts[2]
		if slice == "" {
			slice = "system.slice"
		}
		if strings.Contains(slice, "/") || name == "" || strings.Contains(name, "/") || strings.Contains(prefix, "/") {
			return nil, fmt.Errorf("%q: a systemd slice, prefix or name has no slash and the name is not empty", cgroupsPath)
		}
		if slice != "-" && !strings.HasSuffix(slice, ".slice") {
			return nil, fmt.Errorf("%q: %q is not a slice (name.slice)", cgroupsPath, slice)
		}
		return []string{systemdPath(slice, prefix, name)}, nil
	}
	p := path.Clean(cgroupsPath)
	if p == "/" || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return nil, fmt.Errorf("%q does not name a cgroup of its own", cgroupsPath)
	}
	return []string{p}, nil
}

// systemdPath is where systemd puts unit prefix-name.scope (or the slice
// name) in slice.
func systemdPath(slice, prefix, name string) string {
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		unit = name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
	}
	return path.Join(expandSlice(slice), unit)
}

// expandSlice turns a-b-c.slice into /a.slice/a-b.slice/a-b-c.slice; "-"
// (and -.slice) is the root.
func expandSlice(slice string) string {
	base := strings.TrimSuffix(slice, ".slice")
	if base == "-" || base == "" {
		return "/"
	}
	out, acc := "/", ""
	for i, part := range strings.Split(base, "-") {
		if i > 0 {
			acc += "-"
		}
		acc += part
		out = path.Join(out, acc+".slice")
	}
	return out
}

// match says whether the init's cgroup own lies in the candidate cgroup c
// and returns c's absolute path.
func match(own, c string) (string, bool) {
	if path.IsAbs(c) {
		return c, own == c || strings.HasPrefix(own, c+"/")
	}
	// Relative: below some cgroup of the runtime's. Take the last place
	// the whole path appears as path elements.
	segs := strings.Split(strings.TrimPrefix(own, "/"), "/")
	want := strings.Split(c, "/")
	for i := len(segs) - len(want); i >= 0; i-- {
		if slices.Equal(segs[i:i+len(want)], want) {
			return "/" + strings.Join(segs[:i+len(want)], "/"), true
		}
	}
	return "", false
}
