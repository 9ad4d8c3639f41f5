package cli

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/incident"
)

func TestIncidentCommands(t *testing.T) {
	state := t.TempDir()
	t.Setenv("WARD_CONFIG", filepath.Join(state, "absent.yaml"))
	t.Setenv("WARD_STATE_DIR", state)
	os.WriteFile(filepath.Join(state, "absent.yaml"), nil, 0o644)

	code, out, _ := run(t, "incident", "list")
	if code != ExitOK || !strings.Contains(out, "no incidents") {
		t.Fatalf("empty list: %d %q", code, out)
	}
	s := incident.NewStore(state)
	m, err := s.Collect(context.Background(), incident.Input{
		ContainerID: "0123456789abcdef", Pid: os.Getpid(),
		Trigger: incident.Trigger{Rule: "Detect release_agent File Container Escapes", Response: "freeze"},
		Time:    time.Date(2026, 12, 2, 7, 30, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}

	code, out, _ = run(t, "incident", "list")
	if code != ExitOK || !strings.Contains(out, m.ID) || !strings.Contains(out, "0123456789ab") || !strings.Contains(out, "release_agent") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = run(t, "incident", "list", "--json")
	var l struct {
		WardVersion string              `json:"wardVersion"`
		Incidents   []incident.Manifest `json:"incidents"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &l) != nil || len(l.Incidents) != 1 || l.WardVersion == "" {
		t.Fatalf("list --json: %d\n%s", code, out)
	}

	code, out, _ = run(t, "incident", "show", "20261202T0730")
	if code != ExitOK || !strings.Contains(out, "verified: every file matches") || !strings.Contains(out, "processes.json") {
		t.Fatalf("show by prefix: %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "incident", "show", "1999"); code != ExitBadInput || !strings.Contains(errOut, "no such incident") {
		t.Fatalf("show unknown: %d %s", code, errOut)
	}

	archive := filepath.Join(t.TempDir(), "i.tar.gz")
	if code, _, errOut := run(t, "incident", "export", m.ID, "-o", archive); code != ExitOK {
		t.Fatalf("export: %d %s", code, errOut)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if !strings.Contains(strings.Join(names, " "), m.ID+"/manifest.json") {
		t.Fatalf("archive holds %v", names)
	}

	// A modified bundle: show says so and fails, export refuses.
	os.WriteFile(filepath.Join(s.Dir, m.ID, "processes.json"), []byte("[]"), 0o600)
	if code, _, errOut := run(t, "incident", "show", m.ID); code != ExitError || !strings.Contains(errOut, "modified") {
		t.Fatalf("show modified: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "incident", "export", m.ID, "-o", archive+"2"); code != ExitError || !strings.Contains(errOut, "modified") {
		t.Fatalf("export modified: %d %s", code, errOut)
	}
	if _, err := os.Stat(archive + "2"); err == nil {
		t.Fatal("an archive of a modified bundle was written")
	}
}
