package bundle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// minimal is the smallest spec ward accepts.
const minimal = `{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}`

// withField splices a JSON member into minimal's top level.
func withField(member string) string {
	return strings.Replace(minimal, `{"ociVersion"`, "{"+member+`,"ociVersion"`, 1)
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, spec, path, msg string
	}{
		{"malformed", `{"ociVersion": "1.2.0",`, "", "malformed JSON"},
		{"not an object", `[]`, "", "cannot use JSON array"},
		{"wrong type", strings.Replace(minimal, `"uid":0`, `"uid":"root"`, 1), "process.user.uid", "cannot use JSON string as uint32"},
		{"negative uid", strings.Replace(minimal, `"uid":0`, `"uid":-1`, 1), "process.user.uid", "uint32"},
		{"unknown field", withField(`"privileged":true`), "privileged", "unknown field"},
		{"unknown nested field", strings.Replace(minimal, `"cwd":"/"`, `"cwd":"/","Privileged":true`, 1), "process.Privileged", "unknown field"},
		{"case variant", strings.Replace(minimal, `"cwd":"/"`, `"cwd":"/","NoNewPrivileges":false`, 1), "process.NoNewPrivileges", "case-sensitive"},
		{"duplicate key", strings.Replace(minimal, `"cwd":"/"`, `"cwd":"/","cwd":"/proc/self/fd/7"`, 1), "process.cwd", "duplicate"},
		{"invalid utf8", strings.Replace(minimal, `"sh"`, "\"s\xffh\"", 1), "process.args[0]", "UTF-8"},
		{"unknown capability", strings.Replace(minimal, `"cwd":"/"`, `"cwd":"/","capabilities":{"bounding":["CAP_CHOWN","CAP_EVERYTHING"]}`, 1), "process.capabilities.bounding[1]", `unknown capability "CAP_EVERYTHING"`},
		{"NUL in args", strings.Replace(minimal, `"sh"`, `"sh\u0000-c"`, 1), "process.args[0]", "NUL"},
		{"NUL in mount", withField(`"mounts":[{"destination":"/a"},{"destination":"/x\u0000y","type":"bind","source":"/tmp"}]`), "mounts[1].destination", "NUL"},
		{"dotdot source", withField(`"mounts":[{"destination":"/x","type":"bind","source":"/var/lib/kubelet/pods/u/volumes/../../../../../etc"}]`), "mounts[0].source", `".." component`},
		{"dotdot root", strings.Replace(minimal, `"rootfs"`, `"../../etc"`, 1), "root.path", `".." component`},
		{"dotdot cwd", strings.Replace(minimal, `"cwd":"/"`, `"cwd":"/proc/self/../self/fd/8"`, 1), "process.cwd", `".." component`},
		{"relative cwd", strings.Replace(minimal, `"cwd":"/"`, `"cwd":"tmp"`, 1), "process.cwd", "not an absolute path"},
		{"missing process", `{"ociVersion":"1.2.0","root":{"path":"rootfs"}}`, "process", "missing"},
		{"missing root", `{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"}}`, "root.path", "missing"},
		{"no args", strings.Replace(minimal, `"args":["sh"],`, ``, 1), "process.args", "nothing to run"},
		{"version", strings.Replace(minimal, `"1.2.0"`, `"2.0.0"`, 1), "ociVersion", "unsupported version"},
		{"unknown namespace", withField(`"linux":{"namespaces":[{"type":"pid"},{"type":"time2"}]}`), "linux.namespaces[1].type", "unknown namespace type"},
		{"duplicate namespace", withField(`"linux":{"namespaces":[{"type":"pid"},{"type":"pid","path":"/proc/1/ns/pid"}]}`), "linux.namespaces[1].type", "listed twice"},
		{"annotation NUL", withField(`"annotations":{"io.kubernetes.cri.sandbox-id":"a\u0000b"}`), `annotations["io.kubernetes.cri.sandbox-id"]`, "NUL"},
		{"deep nesting", withField(`"linux":` + strings.Repeat(`{"x":`, 5000) + "1" + strings.Repeat("}", 5000)), "linux.x", "unknown field"},
		{"deep array", withField(`"mounts":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000)), "mounts[0]", "cannot use JSON array"},
		{"trailing data", minimal + `{}`, "", "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.spec))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *bundle.Error", err, err)
			}
			if e.Path != tt.path {
				t.Errorf("path = %q, want %q (error: %v)", e.Path, tt.path, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestParseAcceptsMinimal(t *testing.T) {
	s, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Args[0] != "sh" || s.Root.Path != "rootfs" {
		t.Errorf("decoded %+v", s)
	}
}

func TestLoadDirectoryAndFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Dir != dir || b.ConfigPath != filepath.Join(dir, "config.json") || b.Workload.Kind != Standalone {
		t.Errorf("bundle = %+v", b)
	}
	b, err = Load(filepath.Join(dir, "config.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Dir != "" {
		t.Errorf("a spec file has no bundle dir, got %q", b.Dir)
	}
}

func TestLoadRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	target := write("real.json", minimal)
	link := filepath.Join(dir, "link")
	if err := os.MkdirAll(link, 0o755); err != nil {
		t.Fatal(err)
	}
	// Windows creates symbolic links only with a privilege or in
	// developer mode: without them the case cannot be set up there.
	symlinkErr := os.Symlink(target, filepath.Join(link, "config.json"))
	if symlinkErr != nil && runtime.GOOS != "windows" {
		t.Fatal(symlinkErr)
	}
	fifoDir := filepath.Join(dir, "fifo")
	if err := os.MkdirAll(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifoErr := mkfifo(filepath.Join(fifoDir, "config.json"))
	dirConf := filepath.Join(dir, "dirconf")
	if err := os.MkdirAll(filepath.Join(dirConf, "config.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A sparse 100 MB file: the size check must refuse it before reading.
	huge := filepath.Join(dir, "huge.json")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	tests := []struct {
		name, path, msg string
		setup           error
	}{
		{"symlinked config.json", link, "symbolic link", symlinkErr},
		{"fifo", fifoDir, "not a regular file", fifoErr},
		{"config.json a directory", dirConf, "not a regular file", nil},
		{"100 MB", huge, "over the", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				t.Skipf("cannot be set up on %s: %v", runtime.GOOS, tt.setup)
			}
			_, err := Load(tt.path, 0)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Load(%s) = %v, want an error saying %q", tt.path, err, tt.msg)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "nope"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Load(fifoDir+"-absent", 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing bundle) = %v, want fs.ErrNotExist", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "empty"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(bundle without config.json) = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadNamesFileAndField(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(strings.Replace(minimal, `"uid":0`, `"uid":true`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, 0)
	if err == nil || !strings.HasPrefix(err.Error(), p+":1:48: process.user.uid: ") {
		t.Fatalf("error = %v, want it to start with the file, line:column and the field", err)
	}
}

// TestSyntaxErrorLineColumn: a malformed spec is located by line and
// column, as editors count them, not by byte offset.
func TestSyntaxErrorLineColumn(t *testing.T) {
	_, err := Parse([]byte("{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {,}\n}"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 3, column 15: process: malformed JSON") {
		t.Fatalf("error = %v", err)
	}
}

func TestWorkloadOf(t *testing.T) {
	s, err := Parse([]byte(withField(`"annotations":{
		"io.kubernetes.cri.container-type":"container",
		"io.kubernetes.cri.sandbox-id":"abc",
		"io.kubernetes.cri.sandbox-namespace":"team-a",
		"io.kubernetes.cri.sandbox-name":"web-1",
		"io.kubernetes.cri.sandbox-uid":"u-1",
		"io.kubernetes.cri.container-name":"nginx",
		"io.kubernetes.cri.image-name":"docker.io/library/nginx:1.27"}`)))
	if err != nil {
		t.Fatal(err)
	}
	got := WorkloadOf(s)
	want := Workload{Kind: PodContainer, SandboxID: "abc", Namespace: "team-a", Pod: "web-1", PodUID: "u-1", Container: "nginx", Image: "docker.io/library/nginx:1.27"}
	if got != want {
		t.Errorf("WorkloadOf = %+v, want %+v", got, want)
	}
}

func TestHostPathsResolvesLinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.sock")
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s, err := Parse([]byte(withField(`"mounts":[
		{"destination":"/a","type":"bind","source":"` + link + `"},
		{"destination":"/b","type":"bind","source":"` + real + `"},
		{"destination":"/proc","type":"proc","source":"proc"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	got := HostPaths(s)
	if len(got) != 1 || got[link] != real {
		t.Errorf("HostPaths = %v, want only %s -> %s", got, link, real)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	seeds, _ := filepath.Glob("../testdata/corpus/*/*.json")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *bundle.Error", err, err)
			}
			return
		}
		if s.Process == nil || s.Root == nil {
			t.Fatal("accepted a spec without process or root")
		}
		_ = WorkloadOf(s)
		_ = HostPaths(s)
	})
}
