package supervisor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/alert"
)

// maxPath bounds a path argument read from a process's memory.
const maxPath = 4096

// maxCmdline bounds the command line an alert carries.
const maxCmdline = 4096

// errStale: the notification is no longer pending (the process died or
// was interrupted), so what /proc showed may be another process's.
var errStale = errors.New("notification no longer valid")

// reader reads a notified process's /proc, re-checking after each read
// that the notification is still pending: a pid is only the process's
// while it is blocked in the call.
type reader struct {
	listener int
	id       uint64
	dir      string
}

func newReader(listener int, id uint64, pid uint32) *reader {
	return &reader{listener: listener, id: id, dir: "/proc/" + strconv.FormatUint(uint64(pid), 10)}
}

func (r *reader) valid() error {
	if !idValid(r.listener, r.id) {
		return errStale
	}
	return nil
}

// process reads the process's comm, exe, cmdline, cwd and parent.
func (r *reader) process(pid uint32) (alert.Process, error) {
	p := alert.Process{PID: int(pid)}
	p.Name = strings.TrimSuffix(readSmall(r.dir+"/comm", 64), "\n")
	p.ExePath, _ = os.Readlink(r.dir + "/exe")
	cmd := readSmall(r.dir+"/cmdline", maxCmdline)
	p.Cmdline = strings.TrimSpace(strings.ReplaceAll(cmd, "\x00", " "))
	p.Cwd, _ = os.Readlink(r.dir + "/cwd")
	p.PPID = ppid(readSmall(r.dir+"/status", 4096))
	if err := r.valid(); err != nil {
		return p, err
	}
	if p.PPID > 0 {
		p.PName = strings.TrimSuffix(readSmall("/proc/"+strconv.Itoa(p.PPID)+"/comm", 64), "\n")
	}
	return p, r.valid()
}

// path reads a NUL-terminated string at addr in the process's memory.
func (r *reader) path(addr uint64) (string, error) {
	if addr == 0 {
		return "", nil
	}
	f, err := os.Open(r.dir + "/mem")
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, maxPath)
	n, err := f.ReadAt(buf, int64(addr))
	if n == 0 && err != nil {
		return "", err
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	if err := r.valid(); err != nil {
		return "", err
	}
	return string(buf), nil
}

func readSmall(path string, limit int) string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	buf := make([]byte, limit)
	n, _ := unix.Read(fd, buf)
	if n < 0 {
		return ""
	}
	return string(buf[:n])
}

func ppid(status string) int {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
