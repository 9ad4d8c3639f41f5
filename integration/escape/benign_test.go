package escape_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// benignCheck is one thing an ordinary workload does, on one runtime.
type benignCheck struct {
	Runtime, Name string
	// Err is why it did not work; nil if it did.
	Err error
}

// serverScript is a long-running workload: a web server on the pod's
// loopback, a SIGTERM handler that leaves a note in the volume and exits
// 42, and a main loop that wakes for signals.
const serverScript = `trap 'echo term > /vol/term; exit 42' TERM
mkdir -p /tmp/www && echo benign-page > /tmp/www/index.html
httpd -f -p 127.0.0.1:8080 -h /tmp/www &
echo started > /vol/started
while :; do sleep 1 & wait $!; done`

// nonRootScript runs as uid 1000 and exits 3.
const nonRootScript = `echo uid=$(id -u); echo nonroot-tmp > /tmp/nr && cat /tmp/nr && echo nonroot-vol > /vol/nr; exit 3`

// runBenign runs the benign corpus on every runtime: it must work on each,
// under ward's defaults as on plain runc.
func (s *suite) runBenign(t *testing.T) []benignCheck {
	t.Helper()
	var out []benignCheck
	for _, rt := range runtimes() {
		checks := s.benignOn(t, rt)
		for _, c := range checks {
			if c.Err != nil {
				t.Errorf("benign workload broken on %s: %s: %v", c.Runtime, c.Name, c.Err)
			}
		}
		out = append(out, checks...)
	}
	return out
}

func (s *suite) benignOn(t *testing.T, rt string) []benignCheck {
	t.Helper()
	var checks []benignCheck
	add := func(name string, err error) { checks = append(checks, benignCheck{Runtime: rt, Name: name, Err: err}) }
	vol := s.volume(t, "benign-"+rt)
	p := harness.Pod{Name: "benign-" + rt, Handler: rt, Command: []string{"sh", "-c", serverScript},
		Mounts: []harness.Mount{{Host: vol, Container: "/vol"}}}
	rp, err := s.RunPod(p)
	if rp.SandboxID != "" {
		defer s.RemovePod(rp.SandboxID)
	}
	if err != nil {
		add("long-running server pod starts", err)
		return checks
	}
	if err := waitFile(filepath.Join(vol, "started"), time.Minute); err != nil {
		add("long-running server pod starts", err)
		return checks
	}
	add("shell script (pipeline, loop)", s.expectExec(rp.ContainerID, "3", "sh", "-c", "for i in 1 2 3; do echo line$i; done | wc -l"))
	add("server on loopback answers a client", retry(5, func() error {
		return s.expectExec(rp.ContainerID, "benign-page", "wget", "-qO-", "http://127.0.0.1:8080/")
	}))
	add("write and read /tmp", s.expectExec(rp.ContainerID, "tmp-ok", "sh", "-c", "echo tmp-ok > /tmp/f && cat /tmp/f"))
	add("write to a volume", func() error {
		if _, err := s.Exec(rp.ContainerID, "sh", "-c", "echo vol-ok > /vol/f"); err != nil {
			return err
		}
		return expectFile(filepath.Join(vol, "f"), "vol-ok")
	}())
	add("exec session exit code (7)", func() error {
		// crictl exits 1 and names the command's own status.
		_, err := s.Exec(rp.ContainerID, "sh", "-c", "exit 7")
		if err == nil || !strings.Contains(err.Error(), "command terminated with exit code 7") {
			return fmt.Errorf("exec exit status: %v, want 7", err)
		}
		return nil
	}())
	add("SIGTERM handled, exit code (42) passed through", func() error {
		if _, _, err := s.Crictl("stop", "--timeout", "30", rp.ContainerID); err != nil {
			return err
		}
		code, err := s.exitCode(rp.ContainerID, time.Minute)
		if err != nil {
			return err
		}
		if code != 42 {
			return fmt.Errorf("exit code %d, want 42 (the TERM handler's)", code)
		}
		return expectFile(filepath.Join(vol, "term"), "term")
	}())

	nvol := s.volume(t, "benign-nonroot-"+rt)
	uid := int64(nonRootUID)
	np := harness.Pod{Name: "benign-nonroot-" + rt, Handler: rt, Command: []string{"sh", "-c", nonRootScript},
		RunAsUser: &uid, Mounts: []harness.Mount{{Host: nvol, Container: "/vol"}}}
	nrp, err := s.RunPod(np)
	if nrp.SandboxID != "" {
		defer s.RemovePod(nrp.SandboxID)
	}
	add("non-root (uid 1000) writes /tmp and a volume, exit code (3) passed through", func() error {
		if err != nil {
			return err
		}
		code, err := s.exitCode(nrp.ContainerID, time.Minute)
		if err != nil {
			return err
		}
		logs, stderr, err := s.Crictl("logs", nrp.ContainerID)
		if err != nil {
			return err
		}
		if code != 3 || !strings.Contains(logs, "uid=1000") || !strings.Contains(logs, "nonroot-tmp") {
			return fmt.Errorf("exit code %d (want 3), output %q %q", code, logs, stderr)
		}
		return expectFile(filepath.Join(nvol, "nr"), "nonroot-vol")
	}())
	return checks
}

// volume makes a host directory for a pod's volume, writable by the
// non-root user too.
func (s *suite) volume(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(s.Dir, "volumes", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (s *suite) expectExec(id, want string, cmd ...string) error {
	out, err := s.Exec(id, cmd...)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != want {
		return fmt.Errorf("%s: output %q, want %q", strings.Join(cmd, " "), out, want)
	}
	return nil
}

// exitCode waits for a container to exit and returns its exit code.
func (s *suite) exitCode(id string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		out, _, err := s.Crictl("inspect", "-o", "go-template", "--template", "{{.status.state}} {{.status.exitCode}}", id)
		if state, code, ok := strings.Cut(out, " "); err == nil && ok && state == "CONTAINER_EXITED" {
			return strconv.Atoi(code)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("container %s did not exit in %s: %q %v", id, timeout, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func expectFile(path, want string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(data)) != want {
		return fmt.Errorf("%s holds %q, want %q", path, data, want)
	}
	return nil
}

func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear in %s", path, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func retry(n int, f func() error) error {
	var err error
	for i := 0; i < n; i++ {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return err
}
