// Package alert turns what ward sees at run time into alerts in Falco's
// output format, one JSON object per line, so that the tools operators
// already route Falco's alerts with (Falcosidekick, a log pipeline) take
// ward's unchanged; and it sends them to sinks (a file, a stream, an HTTP
// endpoint), rate-limited and deduplicated per container.
//
// Producers (the seccomp supervisor, the eBPF sensors) fill an Event with
// what they know; New turns it into an Alert; a Dispatcher applies the
// per-container limits and writes to every sink.
package alert

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Priority is Falco's priority (its syslog-like severity names).
type Priority string

const (
	PriorityEmergency     Priority = "Emergency"
	PriorityAlert         Priority = "Alert"
	PriorityCritical      Priority = "Critical"
	PriorityError         Priority = "Error"
	PriorityWarning       Priority = "Warning"
	PriorityNotice        Priority = "Notice"
	PriorityInformational Priority = "Informational"
	PriorityDebug         Priority = "Debug"
)

// SourceSyscall is Falco's source for system-call events.
const SourceSyscall = "syscall"

// Rule is a detection rule as alerts name it.
type Rule struct {
	// ID is ward's stable name for the rule, the key a policy's
	// detection section uses ("mount", "module-load").
	ID string
	// Name is the rule as the alert names it: Falco's own rule name where
	// the meaning matches, so that routing and dashboards built for
	// Falco's rules apply.
	Name string
	// Priority is the alert's priority.
	Priority Priority
	// Tags are Falco-style tags: MITRE ATT&CK technique ids (T1611) and
	// words ("container", "mitre_privilege_escalation").
	Tags []string
	// Summary starts the output line ("Mount attempted in a container").
	Summary string
	// Syscalls are the system calls the rule covers (seccomp rules).
	Syscalls []string
}

// Container is the container an event happened in.
type Container struct {
	ID   string
	Name string
	// PodName and PodNamespace are empty outside Kubernetes.
	PodName      string
	PodNamespace string
	Image        string
}

// Process is the process that caused the event, as /proc showed it.
type Process struct {
	PID     int
	Name    string // comm
	ExePath string
	Cmdline string // argv joined with spaces, as Falco's proc.cmdline
	Cwd     string
	PPID    int
	PName   string // the parent's comm
}

// Decision is ward's decision for the container: the decision-log entry
// that admitted it.
type Decision struct {
	// ID is the decision-log entry's id.
	ID      string
	Action  string // harden, sandbox, audit
	Rule    string // the policy rule that decided, if any
	Backend string
	Door    string // shim, runtime
}

// Event is what a producer saw.
type Event struct {
	Time      time.Time
	Rule      Rule
	Container Container
	Process   Process
	// Syscall is the system call (Falco's evt.type).
	Syscall string
	// Path is the path the call named, if it names one (Falco's fd.name).
	Path string
	// Args are further details as Falco-style fields ("evt.arg.flags").
	Args map[string]string
	// Response is what ward did: "deny", "allow" (audit), "freeze", "kill".
	Response string
	Decision Decision
	// Source is Falco's source; "" means SourceSyscall.
	Source string
}

// Alert is one alert in Falco's output format. Its JSON is Falco's
// json_output line: the fields Falcosidekick reads (output, priority,
// rule, time, output_fields) plus source, tags and hostname.
type Alert struct {
	Hostname     string         `json:"hostname"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
	Priority     Priority       `json:"priority"`
	Rule         string         `json:"rule"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Time         time.Time      `json:"time"`
}

// New builds the alert for e on host.
func New(e Event, host string) Alert {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	t = t.UTC()
	src := e.Source
	if src == "" {
		src = SourceSyscall
	}
	f := map[string]any{
		"evt.time":             t.UnixNano(),
		"evt.type":             e.Syscall,
		"container.id":         shortID(e.Container.ID),
		"container.full_id":    e.Container.ID,
		"container.name":       e.Container.Name,
		"container.image":      nilIfEmpty(e.Container.Image),
		"k8s.pod.name":         nilIfEmpty(e.Container.PodName),
		"k8s.ns.name":          nilIfEmpty(e.Container.PodNamespace),
		"proc.pid":             e.Process.PID,
		"proc.name":            e.Process.Name,
		"proc.exepath":         e.Process.ExePath,
		"proc.cmdline":         e.Process.Cmdline,
		"proc.cwd":             e.Process.Cwd,
		"proc.ppid":            e.Process.PPID,
		"proc.pname":           e.Process.PName,
		"ward.rule":            e.Rule.ID,
		"ward.response":        e.Response,
		"ward.decision.id":     e.Decision.ID,
		"ward.decision.action": e.Decision.Action,
		"ward.decision.rule":   nilIfEmpty(e.Decision.Rule),
		"ward.backend":         e.Decision.Backend,
		"ward.door":            e.Decision.Door,
	}
	if e.Path != "" {
		f["fd.name"] = e.Path
	}
	for k, v := range e.Args {
		f[k] = v
	}
	tags := append([]string(nil), e.Rule.Tags...)
	if tags == nil {
		tags = []string{}
	}
	return Alert{
		Hostname:     host,
		Output:       output(t, e),
		OutputFields: f,
		Priority:     e.Rule.Priority,
		Rule:         e.Rule.Name,
		Source:       src,
		Tags:         tags,
		Time:         t,
	}
}

// output is the human line, as Falco writes it: the time, the priority,
// the rule's summary, then the fields that say who and what.
func output(t time.Time, e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s | evt_type=%s", t.Format("15:04:05.000000000"), e.Rule.Priority, e.Rule.Summary, e.Syscall)
	if e.Path != "" {
		fmt.Fprintf(&b, " fd_name=%s", e.Path)
	}
	fmt.Fprintf(&b, " process=%s proc_exepath=%s parent=%s command=%s", e.Process.Name, e.Process.ExePath, e.Process.PName, strconv.Quote(e.Process.Cmdline))
	fmt.Fprintf(&b, " container_id=%s container_name=%s", shortID(e.Container.ID), e.Container.Name)
	if e.Container.PodName != "" {
		fmt.Fprintf(&b, " k8s_ns=%s k8s_pod=%s", e.Container.PodNamespace, e.Container.PodName)
	}
	fmt.Fprintf(&b, " ward_response=%s ward_decision=%s", e.Response, e.Decision.ID)
	return b.String()
}

// shortID is Falco's container.id: the first 12 characters.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Marshal is the alert's line, with its newline.
func (a Alert) Marshal() ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encoding alert: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse reads one alert line.
func Parse(line []byte) (Alert, error) {
	var a Alert
	if err := json.Unmarshal(line, &a); err != nil {
		return Alert{}, fmt.Errorf("reading alert: %w", err)
	}
	return a, nil
}
