package alert

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleEvent() Event {
	return Event{
		Time: time.Date(2026, 12, 2, 7, 8, 9, 123456789, time.UTC),
		Rule: Rule{ID: "mount", Name: "Mount Launched in Privileged Container", Priority: PriorityWarning,
			Tags: []string{"T1611", "container", "mitre_privilege_escalation"}, Summary: "Mount attempted in a container"},
		Container: Container{ID: "0123456789abcdef0123", Name: "web", PodName: "web-0", PodNamespace: "shop", Image: "nginx:1.27"},
		Process:   Process{PID: 4242, Name: "mount", ExePath: "/usr/bin/mount", Cmdline: "mount -t proc proc /mnt", Cwd: "/", PPID: 1, PName: "sh"},
		Syscall:   "mount",
		Path:      "/mnt",
		Args:      map[string]string{"evt.arg.fstype": "proc"},
		Response:  "deny",
		Decision:  Decision{ID: "d-5f2c", Action: "harden", Rule: "default", Backend: "runc", Door: "shim"},
	}
}

// TestGolden pins the alert's JSON: operators' routing depends on it.
func TestGolden(t *testing.T) {
	line, err := New(sampleEvent(), "node-1").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "alert.json")
	if *update {
		if err := os.WriteFile(golden, line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(line, want) {
		t.Errorf("alert JSON changed (go test -update to accept):\n got %s\nwant %s", line, want)
	}
}

// TestFalcosidekickFields checks what Falcosidekick requires of a Falco
// payload: output, priority, rule, time (RFC 3339), output_fields.
func TestFalcosidekickFields(t *testing.T) {
	line, _ := New(sampleEvent(), "node-1").Marshal()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"output", "priority", "rule", "time", "output_fields", "source", "tags", "hostname"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %q", k)
		}
	}
	var ts string
	json.Unmarshal(m["time"], &ts)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time %q: %v", ts, err)
	}
	a, err := Parse(line)
	if err != nil || a.Rule != "Mount Launched in Privileged Container" || a.OutputFields["k8s.pod.name"] != "web-0" {
		t.Errorf("round trip: %+v %v", a, err)
	}
}

type memSink struct{ lines [][]byte }

func (m *memSink) Write(l []byte) error { m.lines = append(m.lines, bytes.Clone(l)); return nil }
func (m *memSink) Close() error         { return nil }

func TestDispatcherLimits(t *testing.T) {
	m := &memSink{}
	d := NewDispatcher([]Sink{m}, Limits{Dedup: time.Second, Burst: 3, Window: 10 * time.Second})
	e := sampleEvent()
	// The same event twice within the dedup window: one alert.
	for range 2 {
		d.Emit(e)
	}
	if len(m.lines) != 1 {
		t.Fatalf("dedup: %d alerts", len(m.lines))
	}
	// Distinct paths: the burst lets two more through, then holds back.
	for i := range 5 {
		e.Path = "/p" + string(rune('a'+i))
		d.Emit(e)
	}
	if len(m.lines) != 3 {
		t.Fatalf("burst: %d alerts", len(m.lines))
	}
	// Another container has its own budget.
	e.Container.ID = "other"
	if ok, _ := d.Emit(e); !ok {
		t.Fatal("another container was held back")
	}
	// After the window the first container speaks again, with the count.
	e = sampleEvent()
	e.Time = e.Time.Add(11 * time.Second)
	e.Path = "/later"
	d.Emit(e)
	a, _ := Parse(m.lines[len(m.lines)-1])
	if n, _ := a.OutputFields["ward.suppressed"].(float64); n != 3 {
		t.Errorf("suppressed = %v, want 3", a.OutputFields["ward.suppressed"])
	}
}

func TestFileReopensAfterRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alerts.jsonl")
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("1\n"))
	os.Rename(p, p+".1")
	f.Write([]byte("2\n"))
	b, _ := os.ReadFile(p)
	if string(b) != "2\n" {
		t.Errorf("after rotation: %q", b)
	}
}

func TestHTTPPostsFalcoJSON(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
		}
		got <- b
	}))
	defer srv.Close()
	h := NewHTTP(srv.URL+"/", time.Second)
	line, _ := New(sampleEvent(), "n").Marshal()
	if err := h.Write(line); err != nil {
		t.Fatal(err)
	}
	h.Close()
	b := <-got
	if _, err := Parse(b); err != nil || bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("posted %q: %v", b, err)
	}
	if dropped, failed := h.Stats(); dropped+failed != 0 {
		t.Errorf("dropped %d failed %d", dropped, failed)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{File: "rel"}, {HTTP: "ftp://x"}, {HTTP: "http://"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{File: "/var/log/ward/alerts.jsonl", HTTP: "http://sidekick:2801/"}).Validate(); err != nil {
		t.Error(err)
	}
}
