package freezer

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Hierarchy is the cgroup hierarchy whose freezer ward uses.
type Hierarchy struct {
	// Version is 1 (the freezer controller's own hierarchy) or 2 (the
	// unified hierarchy).
	Version int
	// Root is where the hierarchy is mounted, e.g. /sys/fs/cgroup/freezer
	// (v1) or /sys/fs/cgroup (v2). Tests point it at a tree of their own.
	Root string
}

// Host finds this node's freezer from /proc/self/mountinfo.
func Host() (Hierarchy, error) {
	v1, v2, err := hostMounts()
	if err != nil {
		return Hierarchy{}, err
	}
	return pick(v1, v2)
}

// HostUnified is this node's cgroup v2 hierarchy, also on a hybrid node
// where Host picks the v1 freezer: cgroup IDs (what eBPF programs see as
// bpf_get_current_cgroup_id) are the unified hierarchy's.
func HostUnified() (Hierarchy, error) {
	_, v2, err := hostMounts()
	if err != nil {
		return Hierarchy{}, err
	}
	if v2 == "" {
		return Hierarchy{}, &NotSupportedError{Feature: "cgroup v2 hierarchy (no cgroup2 filesystem mounted)"}
	}
	return Hierarchy{Version: 2, Root: v2}, nil
}

func hostMounts() (v1, v2 string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("finding the cgroup hierarchies: %w", err)
	}
	defer f.Close()
	return mounts(f)
}

// FromMountinfo picks the freezer from a mountinfo table: the v1 freezer
// controller when one is mounted (on a hybrid node runtimes freeze through
// it), else the unified hierarchy.
func FromMountinfo(r io.Reader) (Hierarchy, error) {
	v1, v2, err := mounts(r)
	if err != nil {
		return Hierarchy{}, err
	}
	return pick(v1, v2)
}

func pick(v1, v2 string) (Hierarchy, error) {
	switch {
	case v1 != "":
		return Hierarchy{Version: 1, Root: v1}, nil
	case v2 != "":
		return Hierarchy{Version: 2, Root: v2}, nil
	}
	return Hierarchy{}, &NotSupportedError{Feature: "cgroup freezer (no cgroup v1 freezer controller and no cgroup2 filesystem mounted)"}
}

// mounts finds the v1 freezer controller's and the cgroup2 mount points.
func mounts(r io.Reader) (v1, v2 string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := unescapeOctal(pf[4])
		switch qf[0] {
		case "cgroup":
			if v1 == "" && slices.Contains(strings.Split(qf[2], ","), "freezer") {
				v1 = mnt
			}
		case "cgroup2":
			// A pure v2 node mounts it at /sys/fs/cgroup, a hybrid one
			// at /sys/fs/cgroup/unified; the first one wins.
			if v2 == "" {
				v2 = mnt
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("reading mountinfo: %w", err)
	}
	return v1, v2, nil
}

// unescapeOctal undoes mountinfo's \ooo escapes (a space is \040).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
