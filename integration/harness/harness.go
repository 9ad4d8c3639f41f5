// Package harness starts the real container stack that ward's integration
// tests run against: a private containerd (its own root, state, sockets,
// shim socket directory and CNI bridge, all under one temporary directory),
// the local busybox and pause images, and crictl/ctr wrappers. Every test
// gets its own instance; Cleanup (registered with t.Cleanup) stops pods,
// containerd, shims and sandboxes, and removes the mounts, network
// namespaces, cgroups and files they left.
//
// Tests using it call Require first: they skip unless WARD_INTEGRATION=1
// and the process is root. Binaries (containerd, ctr, containerd-shim-runc-v2,
// runc, crictl, CNI plugins) are found on PATH, which `make test-integration`
// points at /opt/ward-deps/bin; ward's own are under $WARD_BIN.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/ward-runtime/ward/internal/sensor"
)

// Images the harness imports into the k8s.io and default namespaces.
const (
	BusyboxImage = "ward.test/busybox:1"
	PauseImage   = "ward.test/pause:1"
	// Subnet is the pods' network: TEST-NET-2, never this host's own.
	Subnet = "198.51.100.0/24"
	// K8sNamespace is the containerd namespace of CRI.
	K8sNamespace = "k8s.io"
)

// Runtime is one containerd runtime handler.
type Runtime struct {
	// Name is the handler name (crictl runp --runtime NAME, ctr --runtime).
	Name string
	// Type is runtime_type; default io.containerd.runc.v2.
	Type string
	// Path is runtime_path, the shim binary; "" uses Type's default name.
	Path string
	// Options is the handler's options table (BinaryName, Root, ...).
	Options map[string]any
	// PodAnnotations and ContainerAnnotations are passed into specs.
	PodAnnotations       []string
	ContainerAnnotations []string
}

// Config describes a containerd instance.
type Config struct {
	// Runtimes are registered in addition to "runc" (containerd's runc shim
	// with $PATH's runc and a private runc root), which is the default.
	Runtimes []Runtime
	// Env is added to containerd's environment (shims inherit it).
	Env []string
	// NoCNI skips the pod network; CRI pods then cannot start.
	NoCNI bool
	// RegistryConfigPath is CRI's registry config_path (a certs.d-style
	// directory of hosts.toml files), e.g. to mirror registries to a local
	// one; "" leaves it unset.
	RegistryConfigPath string
	// ImageExtra is a directory whose tree is copied into the busybox
	// image's root (integration/image/build-busybox.sh, WARD_IMAGE_EXTRA),
	// modes and setuid bits kept: static test programs as the image's own
	// files. "" builds the plain image.
	ImageExtra string
	// Subnet is the pod network, inside Subnet; "" is all of Subnet. A
	// cluster puts its service range in the rest of it.
	Subnet string
	// Dir is the instance's directory, from NewDir, when the caller needs
	// to know it before containerd starts (to put handler configuration
	// or ward's state under it); "" makes a new one.
	Dir string
}

// NewDir makes an instance directory for Config.Dir. It lives under
// /var/tmp: overlayfs snapshots do not work on every tmpfs.
func NewDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "ward-it.")
	if err != nil {
		t.Fatal(err)
	}
	// Searchable by all, as containerd keeps its own root and state
	// (0711): under ward's user namespaces container root is an
	// unprivileged host ID that must reach its bundle and rootfs.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// The node-wide sensors of ward state directories under dir stay
	// pinned in bpffs: unpin them once dir is gone (docs/sensors.md). Runs
	// after the cleanups below, registered later.
	t.Cleanup(func() { sensor.RemoveOrphans() })
	// StartContainerd's cleanup normally removes it; this covers a test
	// that fails before containerd starts.
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err != nil || len(MountsUnder(dir)) > 0 || t.Failed() && os.Getenv("WARD_KEEP") != "" {
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// Containerd is a running private containerd.
type Containerd struct {
	t testing.TB
	// Dir holds everything; removed at cleanup.
	Dir     string
	Root    string
	State   string
	Socket  string
	RuncDir string
	// Log is containerd's log file (shim logs are copied into it).
	Log string

	config    string
	env       []string
	cmd       *exec.Cmd
	exited    chan struct{}
	bridge    string
	cgroupPre map[string]bool
	// imageExtra is Config.ImageExtra.
	imageExtra string
	// podUIDs are the pods RunPod started; their cgroup parents are the
	// kubelet's to remove, so cleanup does it.
	podUIDs []string
	// netns are the network namespaces of this instance's pods. Cleanup
	// removes only these: other instances (other tests, other packages)
	// may be running pods on this host at the same time.
	netns map[string]bool
}

// Require skips t unless integration tests were asked for and can run.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("WARD_INTEGRATION") != "1" {
		t.Skip("integration test: set WARD_INTEGRATION=1 (make test-integration)")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root")
	}
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc", "crictl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not on PATH: run `make deps` and put /opt/ward-deps/bin on PATH: %v", b, err)
		}
	}
}

// WardBin returns the path of one of ward's binaries under $WARD_BIN (or the
// repository's bin/), failing t when it is missing.
func WardBin(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("WARD_BIN")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v (run `make build`)", name, err)
	}
	return p
}

// RepoRoot finds the module root above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		p := filepath.Dir(d)
		if p == d {
			t.Fatal("go.mod not found above the working directory")
		}
		d = p
	}
}

// StartContainerd starts a private containerd with cfg's runtimes, imports
// the busybox and pause images, and registers cleanup with t.
func StartContainerd(t testing.TB, cfg Config) *Containerd {
	t.Helper()
	dir := cfg.Dir
	if dir == "" {
		dir = NewDir(t)
	}
	c := &Containerd{
		t:          t,
		Dir:        dir,
		Root:       filepath.Join(dir, "root"),
		State:      filepath.Join(dir, "state"),
		Socket:     filepath.Join(dir, "containerd.sock"),
		RuncDir:    filepath.Join(dir, "runc"),
		Log:        filepath.Join(dir, "containerd.log"),
		config:     filepath.Join(dir, "config.toml"),
		env:        cfg.Env,
		bridge:     "wardit" + strconv.Itoa(os.Getpid()%100000),
		netns:      map[string]bool{},
		cgroupPre:  cgroupTops(),
		imageExtra: cfg.ImageExtra,
	}
	t.Cleanup(c.cleanup)
	for _, d := range []string{c.Root, c.State, c.RuncDir, "temp", "opt", "s", "cni/net.d", "cni/ipam", "images", "kubelet/pods", "log/pods"} {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.writeConfig(cfg); err != nil {
		t.Fatal(err)
	}
	c.start()
	c.importImages()
	return c
}

func (c *Containerd) writeConfig(cfg Config) error {
	runtimes := map[string]any{
		"runc": map[string]any{
			"runtime_type": "io.containerd.runc.v2",
			"options":      map[string]any{"BinaryName": mustLook("runc"), "Root": c.RuncDir, "SystemdCgroup": false},
		},
	}
	for _, r := range cfg.Runtimes {
		typ := r.Type
		if typ == "" {
			typ = "io.containerd.runc.v2"
		}
		m := map[string]any{"runtime_type": typ}
		if r.Path != "" {
			m["runtime_path"] = r.Path
		}
		if r.Options != nil {
			m["options"] = r.Options
		}
		if r.PodAnnotations != nil {
			m["pod_annotations"] = r.PodAnnotations
		}
		if r.ContainerAnnotations != nil {
			m["container_annotations"] = r.ContainerAnnotations
		}
		runtimes[r.Name] = m
	}
	cri := map[string]any{
		"restrict_oom_score_adj":    true,
		"enable_unprivileged_ports": true,
		"enable_unprivileged_icmp":  true,
		"containerd":                map[string]any{"default_runtime_name": "runc", "runtimes": runtimes},
		"cni":                       map[string]any{"bin_dirs": []string{cniBinDir()}, "conf_dir": filepath.Join(c.Dir, "cni/net.d"), "max_conf_num": 1},
	}
	images := map[string]any{"snapshotter": "overlayfs", "pinned_images": map[string]any{"sandbox": PauseImage}}
	if cfg.RegistryConfigPath != "" {
		images["registry"] = map[string]any{"config_path": cfg.RegistryConfigPath}
	}
	doc := map[string]any{
		"version": 3,
		"root":    c.Root,
		"state":   c.State,
		"temp":    filepath.Join(c.Dir, "temp"),
		"grpc":    map[string]any{"address": c.Socket},
		"ttrpc":   map[string]any{"address": c.Socket + ".ttrpc"},
		"debug":   map[string]any{"address": filepath.Join(c.Dir, "debug.sock"), "level": "info"},
		"plugins": map[string]any{
			"io.containerd.internal.v1.opt":         map[string]any{"path": filepath.Join(c.Dir, "opt")},
			"io.containerd.shim.v1.manager":         map[string]any{"socket_dir": filepath.Join(c.Dir, "s")},
			"io.containerd.nri.v1.nri":              map[string]any{"disable": true},
			"io.containerd.cri.v1.runtime":          cri,
			"io.containerd.cri.v1.images":           images,
			"io.containerd.grpc.v1.cri":             map[string]any{"stream_server_address": "127.0.0.1", "stream_server_port": "0"},
			"io.containerd.monitor.task.v1.cgroups": map[string]any{"no_prometheus": true},
		},
	}
	data, err := toml.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.config, data, 0o644); err != nil {
		return err
	}
	if !cfg.NoCNI {
		subnet := cfg.Subnet
		if subnet == "" {
			subnet = Subnet
		}
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"ward-it","plugins":[{"type":"bridge","bridge":%q,"isGateway":false,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}}]}`,
			c.bridge, subnet, filepath.Join(c.Dir, "cni/ipam"))
		if err := os.WriteFile(filepath.Join(c.Dir, "cni/net.d/10-ward-it.conflist"), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\npull-image-on-create: false\n", c.Socket, c.Socket)
	return os.WriteFile(filepath.Join(c.Dir, "crictl.yaml"), []byte(crictl), 0o644)
}

func mustLook(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return name
	}
	return p
}

func cniBinDir() string {
	if d := os.Getenv("WARD_DEPS_BIN"); d != "" {
		return filepath.Join(d, "cni")
	}
	if p, err := exec.LookPath("containerd"); err == nil {
		return filepath.Join(filepath.Dir(p), "cni")
	}
	return "/opt/ward-deps/bin/cni"
}

// start runs containerd and waits until it answers.
func (c *Containerd) start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(mustLook("containerd"), "--config", c.config)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("starting containerd: %v", err)
	}
	logf.Close()
	c.cmd = cmd
	c.exited = make(chan struct{})
	go func() { cmd.Wait(); close(c.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, err := c.Ctr("version"); err == nil {
			return
		}
		select {
		case <-c.exited:
			c.t.Fatalf("containerd exited:\n%s", tail(c.Log, 30))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("containerd did not come up:\n%s", tail(c.Log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends containerd (SIGTERM, then SIGKILL); shims keep running.
func (c *Containerd) stop() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// Restart stops containerd and starts it again with the same
// configuration; running shims and containers are left alone.
func (c *Containerd) Restart() {
	c.t.Helper()
	c.stop()
	c.start()
}

// Pid is the running containerd's process id (a restart changes it).
func (c *Containerd) Pid() int {
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// RestartWithEnv is Restart with env in place of Config.Env: shims started
// from then on inherit it. One handler registered the way ward install
// registers it (runc's runtime_type, configured by $WARD_CONFIG) can so
// be run under two configurations in one test.
func (c *Containerd) RestartWithEnv(env []string) {
	c.t.Helper()
	c.env = env
	c.Restart()
}

func (c *Containerd) importImages() {
	c.t.Helper()
	imgs := filepath.Join(c.Dir, "images")
	script := filepath.Join(RepoRoot(c.t), "integration/image/build-busybox.sh")
	cmd := exec.Command(script, imgs)
	if c.imageExtra != "" {
		cmd.Env = append(os.Environ(), "WARD_IMAGE_EXTRA="+c.imageExtra)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("building images: %v\n%s", err, out)
	}
	for _, ns := range []string{K8sNamespace, "default"} {
		for _, img := range []string{"busybox", "pause"} {
			if _, stderr, err := c.Ctr("-n", ns, "images", "import", filepath.Join(imgs, img+".tar")); err != nil {
				c.t.Fatalf("importing %s: %v: %s", img, err, stderr)
			}
		}
	}
	// CRI's image store follows containerd's events.
	for i := 0; i < 100; i++ {
		_, _, e1 := c.Crictl("inspecti", PauseImage)
		_, _, e2 := c.Crictl("inspecti", BusyboxImage)
		if e1 == nil && e2 == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("CRI does not see the imported images")
}

// Ctr runs ctr against this containerd.
func (c *Containerd) Ctr(args ...string) (string, string, error) {
	return run(30*time.Second, mustLook("ctr"), append([]string{"--address", c.Socket}, args...)...)
}

// Crictl runs crictl against this containerd.
func (c *Containerd) Crictl(args ...string) (string, string, error) {
	return run(90*time.Second, mustLook("crictl"), append([]string{"--config", filepath.Join(c.Dir, "crictl.yaml")}, args...)...)
}

func run(timeout time.Duration, bin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), errb.String(), err
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	return lastLines(string(data), n)
}

// LogTail returns the last n lines of containerd's log (shim logs included).
func (c *Containerd) LogTail(n int) string { return tail(c.Log, n) }

// cgroupTops are the top-level cgroup directories that pods create parents
// in, on every hierarchy.
func cgroupTops() map[string]bool {
	m := map[string]bool{}
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hs {
		for _, t := range []string{"kubepods", "default", "k8s.io"} {
			if _, err := os.Stat(filepath.Join(h, t)); err == nil {
				m[filepath.Join(h, t)] = true
			}
		}
	}
	return m
}

// MountsUnder lists mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		mp := unescape(fs[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ProcessesUnder returns the pids of processes whose command line or
// working directory names a path under dir: the shims, runc inits and runsc
// sandboxes this instance started, and nothing else.
func ProcessesUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if bytes.Contains(cmdline, []byte(dir+"/")) || bytes.Contains(cmdline, []byte(dir+"\x00")) || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cleanup tears everything down. It never removes the directory across a
// mount point.
func (c *Containerd) cleanup() {
	t := c.t
	if c.cmd != nil {
		if out, _, err := c.Crictl("pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				c.notePodNetns(id)
				c.Crictl("stopp", id)
				c.Crictl("rmp", "-f", id)
			}
		}
		for _, ns := range []string{"default", K8sNamespace} {
			if out, _, err := c.Ctr("-n", ns, "tasks", "ls", "-q"); err == nil {
				for _, id := range strings.Fields(out) {
					c.Ctr("-n", ns, "tasks", "kill", "-s", "SIGKILL", id)
					time.Sleep(200 * time.Millisecond)
					c.Ctr("-n", ns, "tasks", "delete", "-f", id)
				}
			}
			if out, _, err := c.Ctr("-n", ns, "containers", "ls", "-q"); err == nil {
				for _, id := range strings.Fields(out) {
					c.Ctr("-n", ns, "containers", "delete", id)
				}
			}
		}
		c.stop()
	}
	// Shims, runc inits and gVisor sandboxes this instance started.
	for i := 0; i < 3; i++ {
		pids := ProcessesUnder(c.Dir)
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, m := range MountsUnder(c.Dir) {
		if err := syscall.Unmount(m, 0); err != nil {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	for p := range c.netns {
		if _, err := os.Stat(p); err == nil {
			syscall.Unmount(p, syscall.MNT_DETACH)
			os.Remove(p)
		}
	}
	exec.Command("ip", "link", "del", c.bridge).Run()
	for _, uid := range c.podUIDs {
		hs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods/besteffort/pod" + uid)
		for _, h := range hs {
			RemoveCgroupTree(h)
		}
	}
	for _, p := range leftoverCgroups(c.cgroupPre) {
		RemoveCgroupTree(p)
	}
	if m := MountsUnder(c.Dir); len(m) > 0 {
		t.Errorf("mounts left under %s, not removing it: %v", c.Dir, m)
		return
	}
	if t.Failed() && os.Getenv("WARD_KEEP") != "" {
		t.Logf("keeping %s (WARD_KEEP)", c.Dir)
		return
	}
	if t.Failed() {
		t.Logf("containerd log tail:\n%s", tail(c.Log, 60))
	}
	os.RemoveAll(c.Dir)
}

// notePodNetns records a pod's network namespace, a bind mount under
// /var/run/netns that CRI removes when the pod stops, unless containerd
// dies first.
func (c *Containerd) notePodNetns(id string) {
	out, _, err := c.Crictl("inspectp", "-o", "go-template", "--template",
		`{{range .info.runtimeSpec.linux.namespaces}}{{if eq .type "network"}}{{.path}}{{end}}{{end}}`, id)
	if err == nil && (strings.HasPrefix(out, "/var/run/netns/") || strings.HasPrefix(out, "/run/netns/")) {
		c.netns[out] = true
	}
}

// leftoverCgroups lists top-level pod cgroup parents created since pre.
func leftoverCgroups(pre map[string]bool) []string {
	var out []string
	for p := range cgroupTops() {
		if !pre[p] {
			out = append(out, p)
		}
	}
	return out
}

// RemoveCgroupTree removes a cgroup directory and those below it, deepest
// first.
func RemoveCgroupTree(root string) {
	var dirs []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	for _, d := range dirs {
		syscall.Rmdir(d)
	}
}

// RemoveCgroups removes a top-level cgroup's tree in every hierarchy
// (empty cgroups only: rmdir fails on one that still has processes),
// deepest first.
func RemoveCgroups(name string) {
	tops, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	for _, top := range tops {
		RemoveCgroupTree(top)
	}
}
