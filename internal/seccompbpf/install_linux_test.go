package seccompbpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// childEnv names the filter file the test binary installs when it runs as
// TestInstallForReal's child.
const childEnv = "WARD_SECCOMPBPF_CHILD"

// TestInstallForReal installs ward's compiled baseline in a child process
// (irreversible, so never in the test process) and checks what the kernel
// answers, on the calling thread and on another OS thread (TSYNC).
func TestInstallForReal(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		if err := child(path); err != nil {
			fmt.Println("FAIL:", err)
			os.Exit(1)
		}
		fmt.Println("PASS")
		os.Exit(0)
	}
	native, err := Native()
	if err != nil {
		t.Skip(err)
	}
	compiled, err := Compile(wardProfiles(t)["baseline"], native)
	if err != nil {
		t.Fatal(err)
	}
	b, err := compiled.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "filter.bpf")
	if err := os.WriteFile(path, b, 0o444); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstallForReal$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func child(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	native, err := Native()
	if err != nil {
		return err
	}
	p, err := prog.Unmarshal(b, native.Audit)
	if err != nil {
		return err
	}
	if _, err := prog.Install(p, 0); err != nil {
		return err
	}
	if err := probe(); err != nil {
		return fmt.Errorf("calling thread: %w", err)
	}
	// Another OS thread, which existed before the filter: TSYNC covered it.
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		done <- probe()
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("other thread: %w", err)
	}
	return nil
}

// probe checks the kernel's answers under ward's baseline.
func probe() error {
	for _, tc := range []struct {
		what string
		nr   uintptr
		a0   uintptr
		want unix.Errno
	}{
		{"unshare(CLONE_NEWUSER)", unix.SYS_UNSHARE, unix.CLONE_NEWUSER, unix.EPERM},
		{"keyctl", unix.SYS_KEYCTL, 0, unix.EPERM},
		{"clone3", unix.SYS_CLONE3, 0, unix.ENOSYS},
		{"a syscall newer than the profile", 1000, 0, unix.ENOSYS},
		{"getpid", unix.SYS_GETPID, 0, 0},
	} {
		_, _, errno := unix.RawSyscall(tc.nr, tc.a0, 0, 0)
		if !errors.Is(errno, tc.want) && !(tc.want == 0 && errno == 0) {
			return fmt.Errorf("%s: errno %v, want %v", tc.what, errno, tc.want)
		}
	}
	return nil
}
