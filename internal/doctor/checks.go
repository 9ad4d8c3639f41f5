package doctor

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/internal/install"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

func checkLandlock(n *Node) []Result {
	r := Result{ID: "kernel.landlock", Title: "Landlock", Ref: "docs/landlock.md"}
	abi, err := n.Kernel.LandlockABI()
	switch {
	case err != nil:
		r.Status, r.Detail = Warn, fmt.Sprintf("unavailable (%v): containers get no Landlock filesystem rules; boot with lsm=...,landlock", err)
	case abi < 4:
		r.Status, r.Detail = Warn, fmt.Sprintf("ABI %d: filesystem rules only; TCP rules need ABI 4 (Linux 6.7), scoping ABI 6 (Linux 6.12)", abi)
	case abi < 6:
		r.Status, r.Detail = Warn, fmt.Sprintf("ABI %d: no abstract-socket and signal scoping (ABI 6, Linux 6.12)", abi)
	default:
		r.Status, r.Detail = Pass, fmt.Sprintf("ABI %d", abi)
	}
	return []Result{r}
}

func checkUserns(n *Node) []Result {
	r := Result{ID: "kernel.userns", Title: "user namespaces", Ref: "user_namespaces(7)"}
	v, err := readInt(n.path("/proc/sys/user/max_user_namespaces"))
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("cannot read max_user_namespaces: %v", err)
	case v == 0:
		r.Status, r.Detail = Fail, "user.max_user_namespaces is 0: containers cannot be remapped, container root stays host root"
	default:
		r.Status, r.Detail = Pass, fmt.Sprintf("max_user_namespaces %d", v)
	}
	return []Result{r}
}

// checkUsernsPool: the node's policy (ward install's /etc/ward/policy.yaml,
// else the embedded default) maps every hardened container into a user
// namespace from the "ward" entry of /etc/subuid and /etc/subgid; without
// a valid entry the front doors refuse those containers.
func checkUsernsPool(n *Node) []Result {
	r := Result{ID: "userns.pool", Title: "user-namespace ID pool", Ref: "docs/userns.md"}
	p, err := policy.Load(n.path("/etc/ward/policy.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		p, err = policy.Default()
	}
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("reading the node's policy: %v", err)
		return []Result{r}
	case !bool(p.Userns.Enabled):
		r.Status, r.Detail = Warn, "the node's policy turns user namespaces off: container root is host root"
		return []Result{r}
	}
	pool, err := userns.LoadPool(n.path("/etc/subuid"), n.path("/etc/subgid"), p.Userns.Pool)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%v: every hardened container is refused; `ward install` adds a free range", err)
		return []Result{r}
	}
	var ids uint64
	for _, rg := range pool {
		ids += uint64(rg.Size)
	}
	r.Status, r.Detail = Pass, fmt.Sprintf("%q: %v, %d pods", p.Userns.Pool, pool, ids/userns.BlockSize)
	return []Result{r}
}

func checkSeccomp(n *Node) []Result {
	r := Result{ID: "kernel.seccomp", Title: "seccomp filters", Ref: "CIS Docker 5.21"}
	data, err := os.ReadFile(n.path("/proc/sys/kernel/seccomp/actions_avail"))
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("no seccomp filter support (%v): ward's profile cannot be enforced", err)
	case !strings.Contains(string(data), "errno") || !strings.Contains(string(data), "allow"):
		r.Status, r.Detail = Fail, "the kernel lacks the errno action ward's profile uses: "+strings.TrimSpace(string(data))
	default:
		r.Status, r.Detail = Pass, "actions: "+strings.TrimSpace(string(data))
	}
	return []Result{r}
}

// storageDirs are where container filesystems live; idmapped mounts must
// work on them for user-namespaced containers to share files without chown.
func storageDirs() []string {
	return []string{"/var/lib/containerd", "/var/lib/docker", "/var/lib/containers/storage", "/var/lib/kubelet"}
}

func checkIdmap(n *Node) []Result {
	var out []Result
	for _, d := range storageDirs() {
		dir := n.path(d)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		r := Result{ID: "kernel.idmap", Title: "idmapped mounts on " + d, Ref: "mount_setattr(2)"}
		if err := n.Kernel.IdmapSupported(dir); err != nil {
			r.Status, r.Detail = Warn, fmt.Sprintf("%v: user-namespaced containers need the chown fallback here", err)
		} else {
			r.Status, r.Detail = Pass, "supported"
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		r := Result{ID: "kernel.idmap", Title: "idmapped mounts on /var/lib", Ref: "mount_setattr(2)"}
		if err := n.Kernel.IdmapSupported(n.path("/var/lib")); err != nil {
			r.Status, r.Detail = Warn, err.Error()
		} else {
			r.Status, r.Detail = Pass, "supported (no container storage yet; probed /var/lib)"
		}
		out = append(out, r)
	}
	return out
}

func checkCgroup(n *Node) []Result {
	r := Result{ID: "kernel.cgroup", Title: "cgroup version", Ref: "CVE-2022-0492"}
	v, err := n.Kernel.CgroupVersion()
	switch {
	case err != nil:
		r.Status, r.Detail = Warn, err.Error()
	case v == 2:
		r.Status, r.Detail = Pass, "cgroup v2 (unified)"
	default:
		r.Status, r.Detail = Warn, "cgroup v1 or hybrid: writable v1 hierarchies carry release_agent (CVE-2022-0492); move to cgroup v2"
	}
	return []Result{r}
}

func checkSensor(n *Node) []Result {
	r := Result{ID: "kernel.sensor", Title: "eBPF sensor", Ref: "docs/sensors.md"}
	lsm, err := n.Kernel.Sensor()
	if err != nil {
		r.Status, r.Detail = Warn, fmt.Sprintf("%v: ward's seccomp supervisor still works, but writes to release_agent, core_pattern, /proc/sys and sysrq-trigger, host-device opens and drift go unseen", err)
		return []Result{r}
	}
	r.Status, r.Detail = Pass, "loads (syscall tracepoints, BTF, ring buffer)"
	if lsm != nil {
		r.Detail += fmt.Sprintf("; the sensor sees, it cannot deny: %v", lsm)
	} else {
		r.Detail += "; BPF-LSM available"
	}
	return []Result{r}
}

// checkSensorPins reports the node-wide sensors pinned in bpffs: this
// build's is the shared one; an older ward's, or a removed state
// directory's, runs on every open of the node for nobody.
func checkSensorPins(n *Node) []Result {
	r := Result{ID: "ward.sensor.pins", Title: "pinned eBPF sensors", Ref: "docs/sensors.md"}
	pins, err := n.Kernel.PinnedSensors()
	if err != nil {
		r.Status, r.Detail = Warn, err.Error()
		return []Result{r}
	}
	var current, unused []string
	for _, p := range pins {
		switch {
		case p.Orphan:
			unused = append(unused, fmt.Sprintf("%s (its state directory %s is gone)", p.Dir, p.StateDir))
		case !p.Current:
			unused = append(unused, fmt.Sprintf("%s (another ward build's program)", p.Dir))
		default:
			current = append(current, fmt.Sprintf("%s (state directory %s)", p.Dir, p.StateDir))
		}
	}
	switch {
	case len(unused) > 0:
		r.Status, r.Detail = Warn, fmt.Sprintf("%s pinned and running on every open of the node: the next sensor load removes those nobody uses; `ward uninstall` removes every pin", strings.Join(unused, ", "))
	case len(current) == 0:
		r.Status, r.Detail = Pass, "none pinned (the first supervisor with the sensor on loads and pins it)"
	default:
		r.Status, r.Detail = Pass, "shared by the node's supervisors: "+strings.Join(current, ", ")
	}
	return []Result{r}
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)\.(\d+)`)

// version is a semantic version's numbers.
type version [3]int

func parseVersion(s string) (version, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return version{}, false
	}
	var v version
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, true
}

func (v version) less(o version) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func (n *Node) lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(n.Path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", name, n.Path)
}

// runcVerdict judges a runc version against the escapes fixed in it.
func runcVerdict(v version) (Status, string, string) {
	switch {
	case v.less(version{1, 1, 12}):
		return Fail, "runc " + v.String() + " lets a container's working directory leak a host directory (Leaky Vessels); upgrade to 1.2.8 or later", "CVE-2024-21626"
	case v.less(version{1, 2, 8}) || (!v.less(version{1, 3, 0}) && v.less(version{1, 3, 3})):
		return Fail, "runc " + v.String() + " can be tricked into bind-mounting over /proc masked paths (2025 maskedPaths escapes); upgrade to 1.2.8, 1.3.3 or 1.4.0", "CVE-2025-31133, CVE-2025-52565, CVE-2025-52881"
	case v.less(version{1, 2, 0}):
		return Warn, "runc " + v.String() + " cannot make idmapped bind mounts; upgrade to 1.2 or later", ""
	}
	return Pass, "runc " + v.String(), ""
}

// binaryVersion runs a node's binary for its version. Under --root the
// binary is the node's, linked against the node's dynamic loader and
// libraries (a distribution's runc links libseccomp): run from another
// filesystem, as in the installer's pod that sees the host's / at /host,
// it may not start at all ("no such file or directory": no loader there).
// It then runs chrooted into the root, as on the node itself, and failing
// that (no CAP_SYS_CHROOT, or a root without the node's libraries) its Go
// build information gives the main module's version.
func (n *Node) binaryVersion(path string, args ...string) (string, error) {
	out, err := exec.Command(path, args...).CombinedOutput()
	if err == nil {
		return string(out), nil
	}
	err = fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), err)
	root := filepath.Clean(n.Root)
	if n.Root == "" || root == "/" {
		return "", err
	}
	if rel, ok := strings.CutPrefix(path, root+"/"); ok && chrootAttr(root) != nil {
		cmd := exec.Command("/"+rel, args...)
		cmd.SysProcAttr = chrootAttr(root)
		cmd.Dir = "/"
		if out, cerr := cmd.CombinedOutput(); cerr == nil {
			return string(out), nil
		}
	}
	if bi, berr := buildinfo.ReadFile(path); berr == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return filepath.Base(path) + " version " + strings.TrimPrefix(bi.Main.Version, "v") + " (from its Go build information)\n", nil
	}
	return "", err
}

func checkRunc(n *Node) []Result {
	r := Result{ID: "runtime.runc", Title: "runc"}
	path, err := n.lookPath("runc")
	if err != nil {
		r.Status, r.Detail = Fail, "runc is not installed: ward has no runtime for hardened containers"
		return []Result{r}
	}
	out, err := n.binaryVersion(path, "--version")
	v, ok := parseVersion(out)
	if err != nil || !ok {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: cannot tell its version (%v)", path, err)
		return []Result{r}
	}
	r.Status, r.Detail, r.Ref = runcVerdict(v)
	r.Detail += " (" + path + ")"
	return []Result{r}
}

func checkRunsc(n *Node) []Result {
	r := Result{ID: "runtime.runsc", Title: "gVisor (runsc)", Ref: "docs/kubernetes.md"}
	path, err := n.lookPath("runsc")
	if err != nil {
		r.Status, r.Detail = Warn, "runsc is not installed: containers the policy sends to gVisor are refused (ward fails closed)"
		return []Result{r}
	}
	out, err := n.binaryVersion(path, "--version")
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("%s does not run: %v", path, err)
		return []Result{r}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	r.Status, r.Detail = Pass, first+" ("+path+")"
	return []Result{r}
}

func checkKata(n *Node) []Result {
	r := Result{ID: "runtime.kata", Title: "Kata Containers"}
	path, err := n.lookPath("containerd-shim-kata-v2")
	if err != nil {
		r.Status, r.Detail = Warn, "containerd-shim-kata-v2 is not installed: containers the policy sends to Kata are refused (ward fails closed)"
		return []Result{r}
	}
	r.Status, r.Detail = Pass, path
	return []Result{r}
}

// containerdConfig is what the containerd checks read of its configuration:
// the main file and every file it imports.
type containerdConfig struct {
	files   []string
	runtime map[string]string // handler name -> runtime_path or binary
	deflt   string            // default_runtime_name
}

// criRuntimes finds the CRI runtime table in a decoded config, in the
// layout of config version 3 (containerd 2.x) or 2 (1.x).
func criRuntimes(doc map[string]any) (map[string]any, string) {
	plugins, _ := doc["plugins"].(map[string]any)
	for _, key := range []string{"io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"} {
		cri, _ := plugins[key].(map[string]any)
		ctrd, _ := cri["containerd"].(map[string]any)
		if ctrd == nil {
			continue
		}
		rts, _ := ctrd["runtimes"].(map[string]any)
		def, _ := ctrd["default_runtime_name"].(string)
		return rts, def
	}
	return nil, ""
}

func readContainerdConfig(n *Node) (*containerdConfig, error) {
	// The root file of the containerd this node runs: k3s's, RKE2's or
	// k0s's when present, as `ward install` chooses it.
	layout := install.Layouts()[len(install.Layouts())-1]
	for _, l := range install.Layouts() {
		if _, err := os.Stat(n.path(l.Config)); err == nil {
			layout = l
			break
		}
	}
	main := n.path(layout.Config)
	cfg := &containerdConfig{runtime: map[string]string{}}
	var queue []string
	if _, err := os.Stat(main); err == nil {
		queue = append(queue, main)
	} else {
		// containerd 2.x reads conf.d only through an imports line; with no
		// config.toml at all its built-in default imports nothing. Still
		// look, to say so.
		matches, _ := filepath.Glob(n.path("/etc/containerd/conf.d/*.toml"))
		queue = append(queue, matches...)
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		if seen[f] {
			continue
		}
		seen[f] = true
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		var doc map[string]any
		if err := toml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", f, err)
		}
		cfg.files = append(cfg.files, f)
		if imports, ok := doc["imports"].([]any); ok {
			for _, imp := range imports {
				s, _ := imp.(string)
				matches, _ := filepath.Glob(n.path(s))
				queue = append(queue, matches...)
			}
		}
		rts, def := criRuntimes(doc)
		if def != "" {
			cfg.deflt = def
		}
		for name, v := range rts {
			rt, _ := v.(map[string]any)
			path, _ := rt["runtime_path"].(string)
			if opts, ok := rt["options"].(map[string]any); ok && path == "" {
				path, _ = opts["BinaryName"].(string)
			}
			cfg.runtime[name] = path
		}
	}
	return cfg, nil
}

func checkContainerd(n *Node) []Result {
	handler := Result{ID: "containerd.ward", Title: "containerd runtime handler ward", Ref: "docs/kubernetes.md"}
	deflt := Result{ID: "containerd.default", Title: "containerd default runtime", Ref: "docs/kubernetes.md"}
	cfg, err := readContainerdConfig(n)
	if err != nil {
		handler.Status, handler.Detail = Fail, err.Error()
		return []Result{handler}
	}
	if len(cfg.files) == 0 {
		handler.Status, handler.Detail = Warn, "no containerd configuration found under /etc/containerd (is containerd installed here?)"
		return []Result{handler}
	}
	if _, ok := cfg.runtime["ward"]; ok {
		handler.Status, handler.Detail = Pass, "registered in "+strings.Join(cfg.files, ", ")
	} else {
		handler.Status, handler.Detail = Fail, "no runtime \"ward\" in "+strings.Join(cfg.files, ", ")+"; run `ward install` (a hand-written config.toml needs imports = [\"/etc/containerd/conf.d/*.toml\"])"
	}
	switch {
	case cfg.deflt == "ward":
		deflt.Status, deflt.Detail = Pass, "ward: pods without a runtimeClassName are judged too"
	case cfg.deflt == "":
		deflt.Status, deflt.Detail = Warn, "runc (built-in default): only pods with runtimeClassName: ward pass through ward"
	default:
		deflt.Status, deflt.Detail = Warn, cfg.deflt+": only pods with runtimeClassName: ward pass through ward"
	}
	return []Result{handler, deflt}
}

func checkKubeletSeccomp(n *Node) []Result {
	r := Result{ID: "kubelet.seccompDefault", Title: "kubelet seccompDefault", Ref: "CIS Kubernetes 5.7.2"}
	data, err := os.ReadFile(n.path("/var/lib/kubelet/config.yaml"))
	if err != nil {
		r.Status, r.Detail = Warn, "no kubelet config at /var/lib/kubelet/config.yaml: not a Kubernetes node, or configured elsewhere"
		return []Result{r}
	}
	var cfg struct {
		SeccompDefault bool `yaml:"seccompDefault"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		r.Status, r.Detail = Warn, fmt.Sprintf("cannot parse the kubelet config: %v", err)
		return []Result{r}
	}
	if cfg.SeccompDefault {
		r.Status, r.Detail = Pass, "pods default to RuntimeDefault"
	} else {
		r.Status, r.Detail = Warn, "off: pods default to Unconfined; ward injects its profile, but pods on other runtime classes run without one"
	}
	return []Result{r}
}

func checkSockets(n *Node) []Result {
	var out []Result
	// The sockets whose exposure the policy's container-socket-mount check
	// judges are the ones whose permissions matter here.
	for _, s := range policy.ContainerSockets() {
		fi, err := os.Stat(n.path(s))
		if err != nil {
			continue
		}
		r := Result{ID: "socket.permissions", Title: s, Ref: "CIS Docker 3.15"}
		perm := fi.Mode().Perm()
		switch {
		case perm&0o002 != 0:
			r.Status, r.Detail = Fail, fmt.Sprintf("mode %v: every local user can start privileged containers", perm)
		case perm&0o020 != 0 && groupOf(fi) != 0:
			r.Status, r.Detail = Warn, fmt.Sprintf("mode %v, group %d: every member of that group is root on this node", perm, groupOf(fi))
		default:
			r.Status, r.Detail = Pass, fmt.Sprintf("mode %v", perm)
		}
		out = append(out, r)
	}
	return out
}

func readInt(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(bytes.TrimSpace(data)))
}
