package incident

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/policy"
)

// fixture is a container stand-in: a bundle directory with both specs, a
// decision log with its entry, and a running shell with a child.
type fixture struct {
	bundle, log string
	cmd         *exec.Cmd
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{bundle: filepath.Join(dir, "bundle"), log: filepath.Join(dir, "decisions.jsonl")}
	os.Mkdir(f.bundle, 0o755)
	os.WriteFile(filepath.Join(f.bundle, "config.json"), []byte(`{"ociVersion":"1.2.0","annotations":{"ward.dev/rewritten-from":"config.json.orig"}}`), 0o644)
	os.WriteFile(filepath.Join(f.bundle, "config.json.orig"), []byte(`{"ociVersion":"1.2.0"}`), 0o644)
	l, err := decisionlog.Open(f.log)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(decisionlog.Entry{Door: "runtime", Event: "create", ContainerID: "c1", Report: judge.Report{Action: policy.Harden, Reason: "default"}})
	l.Close()
	f.cmd = exec.Command("/bin/sh", "-c", "sleep 300 & wait")
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range descendants(f.cmd.Process.Pid) {
			syscallKill(p)
		}
		f.cmd.Wait()
	})
	// Wait for the child sleep.
	for i := 0; len(descendants(f.cmd.Process.Pid)) < 2; i++ {
		if i == 500 {
			t.Fatal("the shell's child did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func (f *fixture) input() Input {
	return Input{
		ContainerID: "c1", Bundle: f.bundle, Pid: f.cmd.Process.Pid, DecisionLog: f.log,
		Trigger: Trigger{Rule: "Write below release_agent", Response: "freeze", Output: "a write"},
		Alerts:  []json.RawMessage{json.RawMessage(`{"rule":"Write below release_agent"}`), json.RawMessage(`{"rule":"second"}`)},
		Time:    time.Date(2026, 12, 2, 7, 0, 0, 5, time.UTC),
	}
}

func TestCollectVerifyExport(t *testing.T) {
	f := newFixture(t)
	s := Store{Dir: filepath.Join(t.TempDir(), "incidents")}
	m, err := s.Collect(context.Background(), f.input())
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "20261202T070000.000000005Z-c1" {
		t.Errorf("id %q", m.ID)
	}
	var names []string
	for _, fl := range m.Files {
		names = append(names, fl.Name)
	}
	want := "alerts.jsonl cgroup.txt decision.json fds.json mountinfo.txt namespaces.json processes.json spec.json spec.orig.json"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("files %s\nwant  %s", got, want)
	}
	if m.Container.Processes != 2 || m.Container.Freezer != "" {
		t.Errorf("container %+v", m.Container)
	}
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "not frozen") {
		t.Errorf("notes %q: want the one saying it was not frozen", m.Notes)
	}
	dir := filepath.Join(s.Dir, m.ID)
	var procs []Process
	readJSON(t, filepath.Join(dir, "processes.json"), &procs)
	if len(procs) != 2 || procs[0].Pid != f.cmd.Process.Pid || len(procs[0].Children) != 1 || procs[1].Comm != "sleep" ||
		strings.Join(procs[0].Args, " ") != "/bin/sh -c sleep 300 & wait" || procs[0].Exe == "" || len(procs[0].Uid) != 4 {
		t.Errorf("processes %+v", procs)
	}
	var fds map[string][]FD
	readJSON(t, filepath.Join(dir, "fds.json"), &fds)
	if len(fds[strconv.Itoa(f.cmd.Process.Pid)]) < 3 {
		t.Errorf("fds %v", fds)
	}
	var nss map[string]map[string]string
	readJSON(t, filepath.Join(dir, "namespaces.json"), &nss)
	if !strings.HasPrefix(nss[strconv.Itoa(f.cmd.Process.Pid)]["mnt"], "mnt:[") {
		t.Errorf("namespaces %v", nss)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "decision.json")); !bytes.Contains(b, []byte(`"reason":"default"`)) {
		t.Errorf("decision %s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "alerts.jsonl")); strings.Count(string(b), "\n") != 2 {
		t.Errorf("alerts %q", b)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("bundle mode %v: incidents hold specs with secrets", fi.Mode())
	}
	// SHA256SUMS agrees with the manifest, in sha256sum's format.
	sums, _ := os.ReadFile(filepath.Join(dir, SumsName))
	if !strings.Contains(string(sums), m.Files[0].SHA256+"  "+m.Files[0].Name+"\n") {
		t.Errorf("SHA256SUMS %s", sums)
	}
	if err := s.Verify(m.ID); err != nil {
		t.Fatal(err)
	}

	// Export: the tar holds every file, each matching the manifest.
	var buf bytes.Buffer
	if err := s.Export(m.ID, &buf); err != nil {
		t.Fatal(err)
	}
	got := untar(t, buf.Bytes())
	for _, fl := range m.Files {
		sum := sha256.Sum256(got[m.ID+"/"+fl.Name])
		if hex.EncodeToString(sum[:]) != fl.SHA256 {
			t.Errorf("exported %s does not match the manifest", fl.Name)
		}
	}
	if _, ok := got[m.ID+"/"+ManifestName]; !ok {
		t.Error("manifest not exported")
	}
	var again bytes.Buffer
	s.Export(m.ID, &again)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two exports differ")
	}

	// A modified file, and an added one, fail verification and export.
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(`{}`), 0o600)
	os.WriteFile(filepath.Join(dir, "planted"), nil, 0o600)
	err = s.Verify(m.ID)
	if !errors.Is(err, ErrModified) || !strings.Contains(err.Error(), "spec.json: sha256") || !strings.Contains(err.Error(), "planted: not in the manifest") {
		t.Fatalf("verify after tampering: %v", err)
	}
	if err := s.Export(m.ID, io.Discard); !errors.Is(err, ErrModified) {
		t.Fatalf("export after tampering: %v", err)
	}
}

func TestListResolve(t *testing.T) {
	f := newFixture(t)
	s := Store{Dir: filepath.Join(t.TempDir(), "incidents")}
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Fatalf("empty store: %v, %v", l, err)
	}
	in := f.input()
	var ids []string
	for i := range 2 {
		in.Time = in.Time.Add(time.Duration(i) * time.Hour)
		m, err := s.Collect(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// A left-over temporary directory is not an incident.
	os.Mkdir(filepath.Join(s.Dir, ".collect-123"), 0o700)
	l, err := s.List()
	if err != nil || len(l) != 2 || l[0].ID != ids[0] || l[1].ID != ids[1] || l[0].Trigger.Rule == "" {
		t.Fatalf("list %+v, %v", l, err)
	}
	if id, err := s.Resolve("20261202T08"); err != nil || id != ids[1] {
		t.Errorf("resolve by prefix: %q, %v", id, err)
	}
	if _, err := s.Resolve("20261202"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := s.Resolve("1999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	for _, bad := range []string{"../x", ".hidden", "a/b", ""} {
		if _, err := s.Manifest(bad); err == nil {
			t.Errorf("Manifest(%q) accepted", bad)
		}
	}
	// The same container and time twice: the second is refused, never
	// written over the first.
	if _, err := s.Collect(context.Background(), in); err == nil {
		t.Error("second incident with the same id replaced the first")
	}
	ents, _ := os.ReadDir(s.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".collect-") && e.Name() != ".collect-123" {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}

// TestCollectFrozenCgroup collects from a frozen cgroup on this kernel:
// the freezer state is recorded and every process of the cgroup, no other.
func TestCollectFrozenCgroup(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: makes a cgroup")
	}
	h, err := freezer.Host()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := h.Cgroup(fmt.Sprintf("/ward-incident-test-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cg.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Cleanup(func() {
		cg.Kill(ctx)
		for i := 0; i < 100 && os.Remove(cg.Dir()) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	f := newFixture(t)
	// Only the shell moves into the cgroup: its child stays outside and
	// must not be recorded.
	if err := os.WriteFile(filepath.Join(cg.Dir(), "cgroup.procs"), []byte(strconv.Itoa(f.cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cg.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	in := f.input()
	in.Cgroup = cg
	s := Store{Dir: filepath.Join(t.TempDir(), "incidents")}
	m, err := s.Collect(ctx, in)
	// Thawed before anything can fail: the fixture's cleanup waits for
	// its processes, which a frozen cgroup would never let exit.
	if terr := cg.Thaw(ctx); terr != nil {
		t.Fatal(terr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if m.Container.Freezer != freezer.Frozen || m.Container.Processes != 1 || m.Container.Cgroup != fmt.Sprintf("v%d %s", h.Version, cg.Path) || len(m.Notes) != 0 {
		t.Fatalf("manifest %+v", m)
	}
	if err := s.Verify(m.ID); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}
