package landlock_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/harden"
	"github.com/ward-runtime/ward/internal/landlock"
)

// dropAndRun copies a binary into a writable place and runs it: the
// "drop and execute a new binary" shape W^X exists to stop.
// (busybox picks its applet from the name it runs under, hence "echo".)
const dropAndRun = `cp /bin/busybox /tmp/echo && /tmp/echo dropped-ran; echo "tmp=$?"
`

func TestWriteThenExecIsRefused(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)

	// Control: the same hardened spec without Landlock runs the dropped
	// binary from /tmp, so the refusal below is Landlock's.
	plain := spec(rootfs, true, "sh", "-c", dropAndRun)
	e.harden(t, plain, false)
	if r := e.run(t, plain); r.code != 0 || !strings.Contains(r.stdout, "dropped-ran") {
		t.Fatalf("control without Landlock: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	s := spec(rootfs, true, "sh", "-c", dropAndRun+"ls /tmp/echo && echo written")
	v := e.harden(t, s, true)
	if s.Process.Args[0] != landlock.LauncherPath {
		t.Fatalf("args not prefixed: %v (changes %v)", s.Process.Args, v.Changes)
	}
	r := e.run(t, s)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "dropped-ran") {
		t.Errorf("a binary written to a writable place ran:\n%s", r.stdout)
	}
	// sh reports EACCES from execve as status 126, "Permission denied".
	contains(t, "stdout", r.stdout, "tmp=126")
	contains(t, "stderr", r.stderr, "Permission denied")
	contains(t, "stdout", r.stdout, "written") // writing itself is allowed
}

func TestImageBinariesAndScriptsRun(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)
	// On a read-only rootfs the whole image is executable; on a writable
	// one only the program directories (and the entrypoint) are, so
	// /app/serve.sh is refused there.
	for _, c := range []struct {
		readonly bool
		app      string
	}{{true, "app /app/serve.sh x"}, {false, "app=126"}} {
		t.Run(fmt.Sprintf("readonly=%v", c.readonly), func(t *testing.T) {
			s := spec(rootfs, c.readonly, "sh", "-c", "hello.sh && /bin/ls / >/dev/null && echo ls-ok && cat /etc/passwd >/dev/null && echo cat-ok; /app/serve.sh x || echo app=$?")
			e.harden(t, s, true)
			r := e.run(t, s)
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
			for _, w := range []string{"hello from the image", "ls-ok", "cat-ok", c.app} {
				contains(t, "stdout", r.stdout, w)
			}
		})
	}
}

func TestWritableRootfs(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)
	// The entrypoint lives outside the program directories, where a
	// writable rootfs loses x; it must still start. A script written
	// next to it must not run, nor one written to /root.
	writeFile(t, filepath.Join(rootfs, "app/main.sh"), `#!/bin/sh
echo main-started
printf '#!/bin/sh\necho new-script-ran\n' >/app/new.sh && chmod +x /app/new.sh && echo wrote-app
/app/new.sh; echo "app=$?"
cp /bin/busybox /root/bb && /root/bb true; echo "root=$?"
echo x >/bin/overwrite 2>/dev/null; echo "bin-write=$?"
`, 0o755)
	s := spec(rootfs, false, "/app/main.sh")
	e.harden(t, s, true)
	r := e.run(t, s)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{"main-started", "wrote-app", "app=126", "root=126"} {
		contains(t, "stdout", r.stdout, w)
	}
	if strings.Contains(r.stdout, "new-script-ran") {
		t.Errorf("a script written to the rootfs ran")
	}
	if strings.Contains(r.stdout, "bin-write=0") {
		t.Errorf("a program directory was writable on a writable rootfs")
	}
}

func TestWorkloadIdentityPassesThrough(t *testing.T) {
	e := need(t, basePolicy)
	s := spec(e.image(t), true, "sh", "-c", `echo "pid=$$"; echo "argv0=$(tr '\0' ' ' </proc/1/cmdline)"; echo "cwd=$(pwd)"; env | sort; exit 42`)
	e.harden(t, s, true)
	r := e.run(t, s)
	if r.code != 42 {
		t.Errorf("exit status %d, want 42 (stderr %s)", r.code, r.stderr)
	}
	contains(t, "stdout", r.stdout, "pid=1\n")
	contains(t, "stdout", r.stdout, "argv0=sh -c ")
	contains(t, "stdout", r.stdout, "cwd=/root\n")
	contains(t, "stdout", r.stdout, "WORKLOAD_VAR=kept")
	if strings.Contains(r.stdout, landlock.EnvVar) {
		t.Errorf("the launcher's variable reached the workload:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "ward-init") {
		t.Errorf("the launcher is still visible as the workload:\n%s", r.stdout)
	}
}

func TestSignalsPassThrough(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)
	for _, c := range []struct {
		signal string
		want   int
	}{
		{"TERM", 7},       // the workload's own handler ran: it is PID 1
		{"KILL", 128 + 9}, // runc reports death by signal n as 128+n
	} {
		s := spec(rootfs, true, "sh", "-c", `trap 'exit 7' TERM; echo ready >/tmp/ready; while :; do sleep 0.05; done`)
		e.harden(t, s, true)
		id := e.nextID()
		cmd := exec.Command(e.runc, "--root", e.root, "run", "--bundle", bundleFor(t, s), id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return e.runcCmd(t, "exec", id, "cat", "/tmp/ready").stdout == "ready\n"
		})
		if r := e.runcCmd(t, "kill", id, c.signal); r.code != 0 {
			t.Fatalf("kill: %s", r.stderr)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.want {
			t.Errorf("SIG%s: runc run ended with %v, want exit status %d", c.signal, err, c.want)
		}
	}
}

func TestExitStatusAndKillPassThrough(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)
	for _, c := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
	} {
		s := spec(rootfs, true, "sh", "-c", c.script)
		e.harden(t, s, true)
		if r := e.run(t, s); r.code != c.want {
			t.Errorf("%q: exit %d, want %d (stderr %s)", c.script, r.code, c.want, r.stderr)
		}
	}
}

func TestMissingEntrypoint(t *testing.T) {
	e := need(t, basePolicy)
	rootfs := e.image(t)
	for _, arg := range []string{"no-such-program", "/no/such/program"} {
		plain := spec(rootfs, true, arg)
		e.harden(t, plain, false)
		want := e.run(t, plain)
		s := spec(rootfs, true, arg)
		e.harden(t, s, true)
		got := e.run(t, s)
		if got.code == 0 || want.code == 0 {
			t.Fatalf("%s: exit with launcher %d, without %d", arg, got.code, want.code)
		}
		// runc says it at create, the launcher at start; the message is
		// the same lookup error.
		i := strings.Index(want.stderr, "exec: ")
		if i < 0 {
			t.Fatalf("runc's own error has no lookup message: %s", want.stderr)
		}
		msg := strings.TrimSpace(strings.SplitN(want.stderr[i:], "\n", 2)[0])
		msg = strings.TrimRight(strings.ReplaceAll(msg, `\"`, `"`), `"`)
		contains(t, arg+" with the launcher", got.stderr, msg)
	}
}

func TestExecSessionIsRestricted(t *testing.T) {
	e := need(t, basePolicy)
	s := spec(e.image(t), true, "sleep", "60")
	v := e.harden(t, s, true)
	id, _ := e.create(t, s)
	if r := e.runcCmd(t, "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	proc := &specs.Process{
		Args: []string{"sh", "-c", dropAndRun + "hello.sh"},
		Env:  []string{"PATH=/usr/local/bin:/bin", landlock.EnvVar + `={"profile":"forged","root":"rwx","tcpConnect":null,"tcpBind":null}`},
		Cwd:  "/",
	}
	// Control: the raw exec, not rewritten, is not under Landlock.
	raw := *proc
	raw.Env = raw.Env[:1]
	if r := e.execProcess(t, id, &raw); !strings.Contains(r.stdout, "dropped-ran") {
		t.Fatalf("control exec without the launcher: %d %q %q", r.code, r.stdout, r.stderr)
	}
	changes, err := e.judge.Process(proc, &v.Decision, v.Launched)
	if err != nil {
		t.Fatal(err)
	}
	if proc.Args[0] != landlock.LauncherPath || slices.ContainsFunc(proc.Env, func(kv string) bool { return strings.HasPrefix(kv, landlock.EnvVar) }) {
		t.Fatalf("exec process not rewritten: %v %v (%v)", proc.Args, proc.Env, changes)
	}
	r := e.execProcess(t, id, proc)
	if strings.Contains(r.stdout, "dropped-ran") {
		t.Errorf("an exec session ran a dropped binary:\n%s", r.stdout)
	}
	contains(t, "stdout", r.stdout, "tmp=126")
	contains(t, "stdout", r.stdout, "hello from the image")
}

func (e *env) execProcess(t *testing.T, id string, p *specs.Process) result {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "process.json")
	writeFile(t, f, string(b), 0o644)
	return e.runcCmd(t, "exec", "--process", f, id)
}

func TestTCPAllowList(t *testing.T) {
	e := need(t, basePolicy)
	script := `llprobe tcp-connect 127.0.0.1:8080; llprobe tcp-connect 127.0.0.1:9090; llprobe tcp-bind 8080; llprobe tcp-bind 9091; true`
	s := spec(e.image(t), true, "sh", "-c", script)
	s.Annotations = map[string]string{"ward.test/profile": "wx-net"}
	v := e.harden(t, s, true)
	if !slices.ContainsFunc(v.Changes, func(c harden.Change) bool { return strings.Contains(c.Detail, "wx-net") }) {
		t.Fatalf("profile wx-net not chosen: %v", v.Changes)
	}
	id, pid := e.create(t, s)
	// Listeners on both ports, made from outside the container's
	// Landlock domain: a refused connect is Landlock's, not a closed port.
	inNetns(t, pid, func() error {
		if err := loopbackUp(); err != nil {
			return err
		}
		for _, port := range []int{8080, 9090} {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
				return err
			}
			if err := unix.Listen(fd, 4); err != nil {
				return err
			}
		}
		return nil
	})
	out := e.startAndCollect(t, id)
	contains(t, "allowed connect", out, "tcp-connect 127.0.0.1:8080: ok")
	contains(t, "refused connect", out, "tcp-connect 127.0.0.1:9090: EACCES")
	// 8080 is taken by the host-side listener: EADDRINUSE means Landlock
	// let the bind through; 9091 is free and refused.
	contains(t, "allowed bind", out, "tcp-bind 8080: EADDRINUSE")
	contains(t, "refused bind", out, "tcp-bind 9091: EACCES")
}

func TestAbstractSocketScope(t *testing.T) {
	e := need(t, basePolicy)
	s := spec(e.image(t), true, "sh", "-c", "llprobe abstract-connect ward-outside; llprobe abstract-self ward-inside; true")
	e.harden(t, s, true)
	id, pid := e.create(t, s)
	inNetns(t, pid, func() error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@ward-outside"}); err != nil {
			return err
		}
		return unix.Listen(fd, 4)
	})
	out := e.startAndCollect(t, id)
	contains(t, "outside socket", out, "abstract-connect ward-outside: EPERM")
	contains(t, "own socket", out, "abstract-self ward-inside: ok")
}

// startAndCollect starts a created container, waits for it and returns
// its output (runc create gave it the files of that runc command).
func (e *env) startAndCollect(t *testing.T, id string) string {
	t.Helper()
	if r := e.runcCmd(t, "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStopped(t, id)
	b, err := os.ReadFile(e.outputs[id])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("timed out")
}
