// Package runtime_test runs ward-runtime under real clients: runc bundles
// directly, containerd's runc shim (BinaryName), Podman and Docker. Each test
// looks from inside the container at what ward promised: a hardened
// container's /proc/self/status, gVisor's kernel for a routed one, the exit
// status and message for a rejected one.
//
// The tests skip unless WARD_INTEGRATION=1 and root; `make test-integration`
// sets both, PATH (/opt/ward-deps/bin first) and WARD_BIN.
package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
)

// statusScript prints the lines of /proc/self/status the hardened checks
// read.
const statusScript = `grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status`

// gvisorBanner is the first line of gVisor's kernel log.
const gvisorBanner = "Starting gVisor"

// hardenedCapEff is the effective set ward's default policy leaves a
// container that asked for runc spec's defaults (AUDIT_WRITE, KILL,
// NET_BIND_SERVICE): all three are on the allow-list.
const hardenedCapEff = "0000000020000420"

// env is one test's ward-runtime setup: a configuration file naming the
// real backends and a decision log, all under a temporary directory.
type env struct {
	t        *testing.T
	dir      string
	ward     string // ward-runtime binary
	config   string // ward-runtime config file
	decision string // decision log
	runc     string
	runsc    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	harness.Require(t)
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		t.Fatalf("runsc not on PATH: run `make deps`: %v", err)
	}
	runc, _ := exec.LookPath("runc")
	dir, err := os.MkdirTemp("/var/tmp", "ward-rt.")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, dir: dir, ward: harness.WardBin(t, "ward-runtime"),
		config: filepath.Join(dir, "runtime.yaml"), decision: filepath.Join(dir, "decisions.jsonl"),
		runc: runc, runsc: runsc,
	}
	t.Cleanup(func() {
		// runsc leaves its network namespace mounted under its root.
		for _, m := range harness.MountsUnder(dir) {
			exec.Command("umount", "-l", m).Run()
		}
		if !t.Failed() || os.Getenv("WARD_KEEP") == "" {
			os.RemoveAll(dir)
		}
	})
	// Under the default policy's user namespace, container root is an
	// unprivileged host ID: it must be able to reach the bundles below.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	cfg := "runtime:\n  root: " + filepath.Join(dir, "default-root") + "\n" +
		"stateDir: " + filepath.Join(dir, "state") + "\n" +
		"decisionLog: " + e.decision + "\n" +
		"backends:\n  runc: {binary: " + runc + "}\n  gvisor: {binary: " + runsc + ", flags: [--platform=systrap]}\n" +
		harness.UsernsConfig(t, dir)
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// environ is the environment for anything that ends up calling ward-runtime.
func (e *env) environ() []string {
	return append(os.Environ(), "WARD_CONFIG="+e.config)
}

// rootfs builds a busybox root filesystem (Debian's static busybox with
// its applets as symbolic links) at dir.
func rootfs(t *testing.T, dir string) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "true", "false", "grep", "cat", "sleep", "dmesg", "id", "echo", "mount", "umount", "unshare"} {
		os.Symlink("busybox", filepath.Join(bin, a))
	}
}

// spec is the subset of config.json the tests edit.
type spec = map[string]any

// newBundle writes a bundle whose spec is `runc spec`'s, with args and
// edit applied.
func (e *env) newBundle(name string, args []string, edit func(s spec)) string {
	t := e.t
	t.Helper()
	dir := filepath.Join(e.dir, name)
	rootfs(t, filepath.Join(dir, "rootfs"))
	cmd := exec.Command(e.runc, "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	p := s["process"].(spec)
	p["terminal"] = false
	p["args"] = args
	if edit != nil {
		edit(s)
	}
	if data, err = json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func annotate(k, v string) func(spec) {
	return func(s spec) { s["annotations"] = map[string]string{k: v} }
}

// withoutNamespace drops a namespace: for a standalone container that is
// the host's (host-pid for "pid").
func withoutNamespace(typ string) func(spec) {
	return func(s spec) {
		l := s["linux"].(spec)
		var keep []any
		for _, n := range l["namespaces"].([]any) {
			if n.(spec)["type"] != typ {
				keep = append(keep, n)
			}
		}
		l["namespaces"] = keep
	}
}

// status parses statusScript's output.
func status(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// assertHardened checks statusScript's output from inside a container.
func assertHardened(t *testing.T, out string) {
	t.Helper()
	st := status(out)
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
		t.Errorf("not hardened (want Seccomp: 2, NoNewPrivs: 1):\n%s", out)
	}
	capEff, err := strconv.ParseUint(st["CapEff"], 16, 64)
	if err != nil {
		t.Errorf("no CapEff in:\n%s", out)
	}
	// CAP_SYS_ADMIN (21), CAP_NET_RAW (13), CAP_SYS_PTRACE (19),
	// CAP_SYS_MODULE (16): none may survive hardening.
	for _, bit := range []uint{21, 13, 19, 16} {
		if capEff&(1<<bit) != 0 {
			t.Errorf("CapEff %s keeps capability bit %d", st["CapEff"], bit)
		}
	}
}

// decisions reads the decision log.
func (e *env) decisions() []map[string]any {
	data, _ := os.ReadFile(e.decision)
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Errorf("decision log line %q: %v", line, err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// decisionFor returns the last decision about container id (any "door").
func (e *env) decisionFor(id string) map[string]any {
	var last map[string]any
	for _, d := range e.decisions() {
		if d["containerID"] == id {
			last = d
		}
	}
	return last
}

var rejectMsg = regexp.MustCompile(`ward rejected container \S+: findings \[[a-z-, ]+\]; reject-host-takeover: `)
