package nodefacts

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// listenEnv makes the test binary a listener on the named socket (see
// TestMain): the child a test starts in a network namespace of its own.
const listenEnv = "WARD_NODEFACTS_LISTEN"

func TestMain(m *testing.M) {
	if path := os.Getenv(listenEnv); path != "" {
		l, err := net.Listen("unix", path)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		defer l.Close()
		os.Stdout.WriteString("ready\n")
		// Serve until the test closes stdin.
		buf := make([]byte, 1)
		os.Stdin.Read(buf)
		return
	}
	os.Exit(m.Run())
}

// TestListenerOfRenamedSocket: /proc/net/unix keeps the path a socket was
// bound at; after the file is renamed only its identity finds the
// listener (the shape of a daemon socket moved to an unfamiliar name).
func TestListenerOfRenamedSocket(t *testing.T) {
	dir := t.TempDir()
	bound := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", bound)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	defer l.Close()
	moved := filepath.Join(dir, "api.sock")
	if err := os.Rename(bound, moved); err != nil {
		t.Fatal(err)
	}
	if got := boundInTable(id(t, moved), "/proc"); len(got) != 0 {
		t.Fatalf("the path table matched a renamed socket (%v): this test proves nothing here", got)
	}
	f := Gather(&specs.Spec{Mounts: []specs.Mount{bind(moved, "/run/x.sock")}}, dir, defaultPolicy(t), Options{})
	comm, _ := os.ReadFile("/proc/self/comm")
	if o := f.Objects[moved]; o.Listener+"\n" != string(comm) {
		t.Errorf("renamed socket %+v, want listener %q", o, strings.TrimSpace(string(comm)))
	}
}

// TestListenerInAnotherNetworkNamespace: a socket file is reachable from
// any network namespace, so its listener is looked for in all of them (a
// daemon in a pod's namespace serving a hostPath socket).
func TestListenerInAnotherNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a network namespace and entering it need root")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), listenEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if sc := bufio.NewScanner(stdout); !sc.Scan() || sc.Text() != "ready" {
		t.Fatal("listener in a new network namespace did not start")
	}
	if got := boundInTable(id(t, sock), "/proc"); len(got) != 0 {
		t.Fatalf("this namespace's table has the other namespace's socket (%v)", got)
	}
	f := Gather(&specs.Spec{Mounts: []specs.Mount{bind(sock, "/run/x.sock")}}, dir, defaultPolicy(t), Options{})
	want := filepath.Base(self)
	if len(want) > 15 {
		want = want[:15]
	}
	if o := f.Objects[sock]; o.Listener != want {
		t.Errorf("socket %+v, want listener %q", o, want)
	}
}
