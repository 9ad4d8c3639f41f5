// Package procstat reads /proc/<pid>/stat: a process's command name,
// state, parent and start time. The start time (clock ticks after boot)
// tells a process apart from a later one given the same PID.
package procstat

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ward-runtime/ward/internal/bounded"
)

// maxFile bounds what is read: a stat line is a few hundred bytes.
const maxFile = 1 << 20

// Stat is what ward reads from /proc/<pid>/stat.
type Stat struct {
	// Comm is the command name (field 2, without its parentheses).
	Comm string
	// State is field 3 (R, S, D, Z, T, ...).
	State string
	// PPid is field 4.
	PPid int
	// StartTime is field 22: clock ticks after boot.
	StartTime uint64
}

// Read reads /proc/<pid>/stat.
func Read(pid int) (Stat, error) {
	b, err := bounded.ReadFile("/proc/"+strconv.Itoa(pid)+"/stat", maxFile)
	if err != nil {
		return Stat{}, err
	}
	return Parse(string(b))
}

// Parse parses a stat line. The command name is between the first '('
// and the last ')', since it may hold both (and spaces).
func Parse(s string) (Stat, error) {
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return Stat{}, fmt.Errorf("malformed stat %q", s)
	}
	f := strings.Fields(s[close+1:])
	// f[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("malformed stat %q", s)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat ppid %q", f[1])
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat starttime %q", f[19])
	}
	return Stat{Comm: s[open+1 : close], State: f[0], PPid: ppid, StartTime: start}, nil
}
