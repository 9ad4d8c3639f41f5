package wardruntime

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// logger writes ward-runtime's own messages the way runc writes its
// (logrus): to the --log file in the --log-format the caller chose, because
// callers read that file to tell the user why a container did not start
// (containerd's runc shim reads the last "error" line of log.json; podman's
// conmon does the same). Errors also go to stderr, as runc's do.
type logger struct {
	path   string
	format string
	debug  bool
	stderr io.Writer
	now    func() time.Time
}

func newLogger(g globals, stderr io.Writer) *logger {
	return &logger{path: g.log, format: g.logFormat, debug: g.debug, stderr: stderr, now: time.Now}
}

// logLine is logrus's JSON shape; encoding/json sorts nothing, so the
// field order here is the order logrus prints (alphabetical).
type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Time  string `json:"time"`
}

// format renders one line in the caller's format.
func (l *logger) line(level, msg string) []byte {
	ts := l.now().Format(time.RFC3339)
	if l.format == "json" {
		b, err := json.Marshal(logLine{Level: level, Msg: msg, Time: ts})
		if err != nil {
			// A string and two constants always encode.
			panic(err)
		}
		return append(b, '\n')
	}
	return fmt.Appendf(nil, "time=%s level=%s msg=%s\n", strconv.Quote(ts), level, strconv.Quote(msg))
}

// write appends a line to the log file, or to stderr when there is none.
// It reports whether the line went to a file.
func (l *logger) write(level, msg string) bool {
	line := l.line(level, msg)
	if l.path == "" || l.path == "/dev/stderr" {
		l.stderr.Write(line)
		return false
	}
	// O_APPEND: the backend writes to the same file after ward, and the
	// caller reads the last error line.
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(l.stderr, "ward-runtime: opening log %s: %v\n", l.path, err)
		l.stderr.Write(line)
		return false
	}
	defer f.Close()
	if _, err := f.Write(line); err != nil {
		fmt.Fprintf(l.stderr, "ward-runtime: writing log %s: %v\n", l.path, err)
		return false
	}
	return true
}

// error logs a failure. Like runc, the bare message also goes to stderr
// when the formatted line went to a file, so a caller that shows stderr
// (podman, a terminal) shows it too.
func (l *logger) error(msg string) {
	if l.write("error", msg) {
		fmt.Fprintln(l.stderr, msg)
	}
}

// warn logs something an operator should see but that does not stop the
// container.
func (l *logger) warn(msg string) { l.write("warning", msg) }

// debugf logs only with --debug.
func (l *logger) debugf(format string, args ...any) {
	if l.debug {
		l.write("debug", fmt.Sprintf(format, args...))
	}
}
