package incident

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/procstat"
)

// Limits that keep a bundle bounded whatever the container does (a fork
// bomb, a process holding a million files).
const (
	maxProcs     = 1024
	maxFDs       = 4096
	maxCmdline   = 64 << 10
	maxProcFile  = 1 << 20
	maxMountinfo = 8 << 20
)

// procRoot is where processes are read.
const procRoot = "/proc"

// Process is one process of the container, as /proc showed it.
type Process struct {
	Pid  int `json:"pid"`
	PPid int `json:"ppid"`
	// NSpid is the process's ID in each PID namespace, outermost first
	// (the last one is what the container sees).
	NSpid []int  `json:"nspid,omitempty"`
	Comm  string `json:"comm"`
	State string `json:"state,omitempty"`
	// StartTime is the start time in clock ticks after boot (stat field
	// 22): with Pid it names the process even after its PID is reused.
	StartTime uint64   `json:"startTime"`
	Exe       string   `json:"exe,omitempty"`
	Args      []string `json:"args"`
	Cwd       string   `json:"cwd,omitempty"`
	Root      string   `json:"root,omitempty"`
	// Uid and Gid are real, effective, saved and filesystem IDs.
	Uid        []int  `json:"uid,omitempty"`
	Gid        []int  `json:"gid,omitempty"`
	CapEff     string `json:"capEff,omitempty"`
	CapBnd     string `json:"capBnd,omitempty"`
	NoNewPrivs string `json:"noNewPrivs,omitempty"`
	Seccomp    string `json:"seccomp,omitempty"`
	// Children are the recorded processes whose parent this is.
	Children []int `json:"children,omitempty"`
}

// FD is one open file.
type FD struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
}

// processes lists and reads the container's processes.
func (w *writer) processes(ctx context.Context, in Input) []Process {
	var pids []int
	if in.Cgroup != nil {
		var err error
		if pids, err = in.Cgroup.Pids(); err != nil {
			w.note("processes: %v", err)
		}
	}
	if len(pids) == 0 && in.Pid > 0 {
		pids = descendants(in.Pid)
	}
	if len(pids) > maxProcs {
		w.note("processes: %d in the container, the first %d recorded", len(pids), maxProcs)
		pids = pids[:maxProcs]
	}
	var procs []Process
	for _, pid := range pids {
		if ctx.Err() != nil {
			w.note("processes: %v", ctx.Err())
			break
		}
		p, err := readProcess(pid)
		if err != nil {
			w.note("process %d: %v", pid, err)
			continue
		}
		procs = append(procs, p)
	}
	// The tree, within the container.
	idx := map[int]int{}
	for i, p := range procs {
		idx[p.Pid] = i
	}
	for _, p := range procs {
		if i, ok := idx[p.PPid]; ok {
			procs[i].Children = append(procs[i].Children, p.Pid)
		}
	}
	w.jsonFile("processes.json", procs)
	return procs
}

// procFiles records open files, namespaces, mount tables and cgroups.
func (w *writer) procFiles(initPid int, procs []Process) {
	fds := map[string][]FD{}
	nss := map[string]map[string]string{}
	for _, p := range procs {
		key := strconv.Itoa(p.Pid)
		f, err := readFDs(p.Pid)
		if err != nil {
			w.note("open files of %d: %v", p.Pid, err)
		}
		if len(f) > maxFDs {
			w.note("open files of %d: %d, the first %d recorded", p.Pid, len(f), maxFDs)
			f = f[:maxFDs]
		}
		fds[key] = f
		if nss[key], err = readNamespaces(p.Pid); err != nil {
			w.note("namespaces of %d: %v", p.Pid, err)
		}
	}
	w.jsonFile("fds.json", fds)
	w.jsonFile("namespaces.json", nss)
	if initPid <= 0 {
		return
	}
	w.procText("mountinfo.txt", initPid, "mountinfo", maxMountinfo)
	w.procText("cgroup.txt", initPid, "cgroup", maxProcFile)
	// One more mount table per other mount namespace (a process that
	// unshared its own is one to look at).
	seen := map[string]bool{nss[strconv.Itoa(initPid)]["mnt"]: true}
	for _, p := range procs {
		if mnt := nss[strconv.Itoa(p.Pid)]["mnt"]; mnt != "" && !seen[mnt] {
			seen[mnt] = true
			w.procText(fmt.Sprintf("mountinfo-%d.txt", p.Pid), p.Pid, "mountinfo", maxMountinfo)
		}
	}
}

// procText copies /proc/<pid>/<name> into the bundle.
func (w *writer) procText(file string, pid int, name string, limit int64) {
	data, err := bounded.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), name), limit)
	if err != nil {
		w.note("%s: %v", file, err)
		return
	}
	w.file(file, data)
}

// descendants is pid and every process below it, from each process's
// parent in /proc/<pid>/stat.
func descendants(root int) []int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procstat.Read(pid); err == nil {
			children[st.PPid] = append(children[st.PPid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out) && len(out) <= maxProcs; i++ {
		out = append(out, children[out[i]]...)
	}
	slices.Sort(out)
	return out
}

// readProcess reads what /proc says of pid. Only stat is required: a
// process whose other files cannot be read (a zombie has no exe) is still
// recorded.
func readProcess(pid int) (Process, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return Process{}, err
	}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	p := Process{Pid: pid, PPid: st.PPid, Comm: st.Comm, State: st.State, StartTime: st.StartTime, Args: []string{}}
	p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	p.Cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
	p.Root, _ = os.Readlink(filepath.Join(dir, "root"))
	if b, err := bounded.ReadFile(filepath.Join(dir, "cmdline"), maxCmdline); err == nil {
		if s := strings.TrimSuffix(string(b), "\x00"); s != "" {
			p.Args = strings.Split(s, "\x00")
		}
	}
	if b, err := bounded.ReadFile(filepath.Join(dir, "status"), maxProcFile); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Uid":
				p.Uid = ints(v)
			case "Gid":
				p.Gid = ints(v)
			case "NSpid":
				p.NSpid = ints(v)
			case "CapEff":
				p.CapEff = v
			case "CapBnd":
				p.CapBnd = v
			case "NoNewPrivs":
				p.NoNewPrivs = v
			case "Seccomp":
				p.Seccomp = v
			}
		}
	}
	return p, nil
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// readFDs reads the targets of /proc/<pid>/fd/*, in fd order.
func readFDs(pid int) ([]FD, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []FD
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			target = "(" + err.Error() + ")"
		}
		out = append(out, FD{FD: n, Target: target})
	}
	slices.SortFunc(out, func(a, b FD) int { return a.FD - b.FD })
	return out, nil
}

// readNamespaces reads /proc/<pid>/ns/* links ("mnt" -> "mnt:[4026531841]").
func readNamespaces(pid int) (map[string]string, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "ns")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out[e.Name()] = t
		}
	}
	return out, nil
}
