package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// Binaries returns the names of ward's programs, installed side by side:
// ward and ward-runtime find the Landlock launcher (ward-init) beside
// themselves.
func Binaries() []string {
	return []string{"ward", "ward-runtime", "containerd-shim-ward-v2", "ward-init"}
}

// Paths on the node that `ward install` writes. They are host paths: under
// a DaemonSet the installer runs with Root=/host, but containerd and the
// shims read these paths on the host itself.
const (
	ConfigDir  = "/etc/ward"
	PolicyPath = "/etc/ward/policy.yaml"
	// NodeConfigPath is the node configuration every ward binary reads.
	NodeConfigPath = nodeconfig.DefaultPath
	// DecisionLog is the decision log of every front door and handler.
	DecisionLog     = "/var/log/ward/decisions.jsonl"
	LogDir          = "/var/log/ward"
	StateDir        = "/run/ward"
	ContainerdConf  = "/etc/containerd/config.toml"
	DropInDir       = "/etc/containerd/conf.d"
	DropInPath      = "/etc/containerd/conf.d/ward.toml"
	RuncRoot        = "/run/containerd/runc-ward"
	wardRuntimeType = "io.containerd.ward.v2"
	runcRuntimeType = "io.containerd.runc.v2"
)

// DefaultSearchPath returns where runtimes are looked for under a root
// other than "/" (the installing process's $PATH says nothing about the
// host's).
func DefaultSearchPath() []string {
	return []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
}

// Node describes the node `ward install` writes for.
type Node struct {
	// Root is the node's "/" as this process sees it ("/host" in a
	// DaemonSet pod, a temp dir in tests).
	Root string
	// BinDir is the host directory ward's binaries go to.
	BinDir string
	// From is the directory (in this process's view) holding the built
	// binaries to copy.
	From string
	// Path lists host directories searched, under Root, for runc, runsc and
	// Kata's shim.
	Path []string
	// Runc, Runsc and KataShim name the runtimes on the host outright,
	// skipping the search; "" searches.
	Runc, Runsc, KataShim string
	// ContainerdConfig is the host's containerd configuration file,
	// read (never written) to check its imports and cgroup driver; default
	// ContainerdConf.
	ContainerdConfig string
	// ContainerdVersion is the host containerd's version ("2.4", "2.x");
	// "" learns it from the containerd binary found on Path.
	ContainerdVersion string
}

// Runtimes are the OCI runtimes and shims found on the node (host paths,
// "" when absent).
type Runtimes struct {
	Runc, Runsc, KataShim string
}

// Handler is a containerd runtime handler the drop-in registers.
type Handler struct {
	Name string
	// Backend is what the handler runs: "harden" (ward's policy on runc),
	// "gvisor" or "kata" (every workload sent to that sandbox).
	Backend string
	// WardConfig is the shim configuration the handler names, "" for
	// the node default (ShimConfigPath).
	WardConfig string
}

// NodePlan is what install writes for a node and what it found there.
type NodePlan struct {
	Files    []File
	Runtimes Runtimes
	Handlers []Handler
	// SystemdCgroup is the cgroup driver copied from the host's runc
	// handler, so ward's pods land where the kubelet expects them.
	SystemdCgroup bool
	// Advice says what the operator must change by hand (ward never edits
	// containerd's own config.toml); empty when nothing.
	Advice []string
	// Layout is where this node's containerd keeps its configuration
	// (containerd's own, k3s, RKE2, k0s); the drop-in is Layout.DropIn().
	Layout Layout
}

// Build works out every file for the node. It reads the node (binaries,
// runtimes, containerd's config) but writes nothing.
func (n Node) Build() (*NodePlan, error) {
	if n.BinDir == "" || !filepath.IsAbs(n.BinDir) {
		return nil, fmt.Errorf("binary directory %q: must be an absolute host path", n.BinDir)
	}
	rt, err := n.findRuntimes()
	if err != nil {
		return nil, err
	}
	np := &NodePlan{Runtimes: rt}
	np.Layout = n.layout()
	np.SystemdCgroup, np.Advice, err = n.readContainerdConfig(np.Layout)
	if err != nil {
		return nil, err
	}
	for _, b := range Binaries() {
		data, err := os.ReadFile(filepath.Join(n.From, b))
		if err != nil {
			return nil, fmt.Errorf("reading ward's binary: %w (build with `make build`, or give --from)", err)
		}
		np.Files = append(np.Files, File{Path: filepath.Join(n.BinDir, b), Data: data, Mode: 0o755})
	}
	shim := filepath.Join(n.BinDir, "containerd-shim-ward-v2")
	np.Handlers = append(np.Handlers, Handler{Name: "ward", Backend: "harden"})
	np.Files = append(np.Files,
		File{Path: PolicyPath, Data: policy.DefaultYAML(), Mode: 0o644, Keep: true},
		File{Path: LogDir + "/README", Data: []byte(logReadme), Mode: 0o644},
	)
	main, err := nodeConfig(PolicyPath, rt, "every ward binary on this node (docs/configuration.md)")
	if err != nil {
		return nil, err
	}
	np.Files = append(np.Files, File{Path: NodeConfigPath, Data: main, Mode: 0o644})
	for _, s := range []struct {
		name, backend, binary string
	}{
		{"ward-gvisor", string(policy.GVisor), rt.Runsc},
		{"ward-kata", string(policy.Kata), rt.KataShim},
	} {
		if s.binary == "" {
			continue
		}
		pol, err := SandboxPolicy(policy.Backend(s.backend))
		if err != nil {
			return nil, err
		}
		polPath := fmt.Sprintf("%s/policy-%s.yaml", ConfigDir, s.backend)
		cfgPath := fmt.Sprintf("%s/ward-%s.yaml", ConfigDir, s.backend)
		cfg, err := nodeConfig(polPath, rt, "the "+s.name+" handler (its WardConfig option): every workload in "+s.backend)
		if err != nil {
			return nil, err
		}
		np.Files = append(np.Files,
			File{Path: polPath, Data: pol, Mode: 0o644, Keep: true},
			File{Path: cfgPath, Data: cfg, Mode: 0o644},
		)
		np.Handlers = append(np.Handlers, Handler{Name: s.name, Backend: s.backend, WardConfig: cfgPath})
	}
	subids, err := n.subIDFiles()
	if err != nil {
		return nil, err
	}
	np.Files = append(np.Files, subids...)
	dropIn, err := containerdDropIn(np.Handlers, shim, rt.Runc, np.SystemdCgroup)
	if err != nil {
		return nil, err
	}
	np.Files = append(np.Files, File{Path: np.Layout.DropIn(), Data: dropIn, Mode: 0o644})
	return np, nil
}

// findRuntimes resolves the runtimes: named ones as given, the others by
// searching Path under Root. runc is required: the ward handler hardens
// on it.
func (n Node) findRuntimes() (Runtimes, error) {
	rt := Runtimes{Runc: n.Runc, Runsc: n.Runsc, KataShim: n.KataShim}
	for _, r := range []struct {
		dst  *string
		name string
	}{{&rt.Runc, "runc"}, {&rt.Runsc, "runsc"}, {&rt.KataShim, "containerd-shim-kata-v2"}} {
		if *r.dst != "" {
			if !filepath.IsAbs(*r.dst) {
				return rt, fmt.Errorf("%s %q: must be an absolute host path", r.name, *r.dst)
			}
			continue
		}
		*r.dst = n.search(r.name)
	}
	if rt.Runc == "" {
		return rt, fmt.Errorf("finding runc under %s in %s: not found (install runc >= 1.2, or name it with --runc)",
			n.Root, strings.Join(n.Path, ":"))
	}
	return rt, nil
}

// search returns the host path of the first executable name in Path under
// Root, or "".
func (n Node) search(name string) string {
	for _, dir := range n.Path {
		if !filepath.IsAbs(dir) {
			// A relative $PATH entry means nothing on the host.
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(filepath.Join(n.Root, p))
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// readContainerdConfig reads the host's containerd config.toml for two
// things: whether it imports the drop-in directory (containerd reads
// imports only from a config file that names them; a hand-written file
// often does not), and the runc handler's cgroup driver, which ward's
// handlers must share with the kubelet.
func (n Node) readContainerdConfig(l Layout) (bool, []string, error) {
	path, dropIn, pattern := l.Config, l.DropIn(), l.importPattern()
	cv := n.containerdVersion()
	data, err := os.ReadFile(filepath.Join(n.Root, path))
	if errors.Is(err, fs.ErrNotExist) {
		if err := checkConfigVersions(path, 3, cv); err != nil {
			return false, nil, err
		}
		// containerd >= 2.2's built-in default names conf.d in its
		// imports, but containerd resolves imports only from files it
		// loads: with no config file it reads no drop-in (v2.4.2,
		// cmd/containerd/command/main.go loads nothing then).
		return false, []string{fmt.Sprintf(
			"%s does not exist: containerd then runs on its built-in defaults and reads no drop-in (2.2 and later too: the default's imports are only read from a file). "+
				"Create it with these two lines (containerd 2.x), then restart containerd:\n    version = 3\n    imports = [%q]",
			path, pattern)}, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("reading containerd config: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return false, nil, fmt.Errorf("parsing containerd config %s: %w", path, err)
	}
	var advice []string
	if !importsCover(doc["imports"], filepath.Dir(path), dropIn) {
		how := fmt.Sprintf("add this line at the top of the file, before the first [table]:\n    imports = [%q]", pattern)
		if _, ok := doc["imports"]; ok {
			how = fmt.Sprintf("add %q to its existing imports list", pattern)
		}
		if l.HowToImport != "" {
			how = l.HowToImport
		}
		advice = append(advice, fmt.Sprintf(
			"%s does not import %s, so containerd will not see ward's handlers. ward does not edit that file; %s\nthen restart containerd.",
			path, pattern, how))
	}
	rootVersion, ok := doc["version"].(int64)
	if !ok {
		rootVersion = 1
	}
	if err := checkConfigVersions(path, rootVersion, cv); err != nil {
		return false, nil, err
	}
	return systemdCgroup(doc), advice, nil
}

// importsCover reports whether one of containerd's import patterns (as
// containerd resolves them: relative to the config's directory, globbed)
// matches the drop-in.
func importsCover(v any, dir, dropIn string) bool {
	list, _ := v.([]any)
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			continue
		}
		s = filepath.Clean(s)
		if !filepath.IsAbs(s) {
			s = filepath.Join(dir, s)
		}
		if ok, _ := filepath.Match(s, dropIn); ok {
			return true
		}
	}
	return false
}

// systemdCgroup reads SystemdCgroup from the runc handler, in containerd
// 2.x's layout (config version 3) or 1.x's (version 2).
func systemdCgroup(doc map[string]any) bool {
	for _, plugin := range []string{"io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"} {
		v, ok := lookup(doc, "plugins", plugin, "containerd", "runtimes", "runc", "options", "SystemdCgroup").(bool)
		if ok {
			return v
		}
	}
	return false
}

func lookup(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// SandboxPolicy is ward's default policy plus one rule that sends every
// workload to backend: the policy of the ward-gvisor and ward-kata
// handlers. The rules that reject still win (the strictest action wins),
// so a pod that hands over the host is refused on these handlers too.
func SandboxPolicy(b policy.Backend) ([]byte, error) {
	def := policy.DefaultYAML()
	const anchor = "\nexemptions:"
	i := bytes.LastIndex(def, []byte(anchor))
	if i < 0 {
		return nil, errors.New("building the sandbox policy: the default policy has no exemptions section to insert before")
	}
	// namespaces: ["*"] is a condition every workload meets: '*' matches
	// any namespace, the empty one of a workload outside Kubernetes too.
	// (A rule must have a condition, so that none matches everything by
	// accident; this one does so on purpose.)
	rule := fmt.Sprintf(`
  # Added by `+"`ward install`"+` for the ward-%[1]s handler: every workload this
  # handler runs goes to %[1]s. Pods choose the handler with their RuntimeClass.
  - name: sandbox-everything-%[1]s
    reason: the pod's RuntimeClass runs every workload in %[1]s
    match:
      namespaces: ["*"]
    action: sandbox
    backend: %[1]s
`, b)
	out := make([]byte, 0, len(def)+len(rule))
	out = append(out, def[:i]...)
	out = append(out, rule...)
	out = append(out, def[i:]...)
	p, err := policy.Parse(out, fmt.Sprintf("policy-%s.yaml", b))
	if err != nil {
		return nil, fmt.Errorf("building the sandbox policy: %w", err)
	}
	if err := backend.Builtin().CheckPolicy(p); err != nil {
		return nil, fmt.Errorf("building the sandbox policy: %w", err)
	}
	if last := p.Rules[len(p.Rules)-1]; last.Action != policy.Sandbox || last.Backend != b {
		return nil, fmt.Errorf("building the sandbox policy: the added rule did not land last (%s)", last.Name)
	}
	return out, nil
}

const logReadme = `ward's decision log, one JSON line per decision (written by ` + "`ward install`" + `):
  decisions.jsonl   every front door ("door": shim or runtime) and handler ("policy" names its policy)
` + "`ward uninstall`" + ` removes this file only; the logs are the operator's.
`

// nodeConfig is a node configuration file, marshalled from the struct
// every binary reads. The pool files and the allocator directory, which
// every front door of the node must share, are named explicitly (they are
// also the defaults) so that an operator sees where the IDs come from.
func nodeConfig(policyPath string, rt Runtimes, usedBy string) ([]byte, error) {
	c := nodeconfig.Config{
		Policy:      policyPath,
		DecisionLog: DecisionLog,
		Backends:    map[string]backend.Spec{"runc": {Binary: rt.Runc}},
		Userns:      userns.Config{SubUID: SubUIDPath, SubGID: SubGIDPath, StateDir: userns.DefaultStateDir},
	}
	if rt.Runsc != "" {
		c.Backends["gvisor"] = backend.Spec{Binary: rt.Runsc}
	}
	if rt.KataShim != "" {
		c.Backends["kata"] = backend.Spec{Binary: rt.KataShim}
	}
	header := "Written by `ward install`; `ward uninstall` removes it. The ward node configuration of\n" + usedBy + "."
	if rt.Runsc == "" {
		header += "\nrunsc was not found: a decision for gVisor fails closed."
	}
	return c.Marshal(header)
}

// yamlString quotes s for YAML (a JSON string is a YAML string).
func yamlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlString quotes s as a TOML basic string (the same escapes as JSON's
// for what can appear in a path).
func tomlString(s string) string { return yamlString(s) }

// containerdDropIn writes the containerd config-version-3 drop-in that
// registers the handlers.
func containerdDropIn(handlers []Handler, shim, runc string, systemd bool) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# Written by `ward install`; `ward uninstall` removes it. containerd 2.x reads it\n")
	fmt.Fprintf(&b, "# through the `imports` line of %s (docs/kubernetes.md).\n", ContainerdConf)
	b.WriteString("version = 3\n")
	const table = `plugins."io.containerd.cri.v1.runtime".containerd.runtimes.`
	for _, h := range handlers {
		b.WriteString("\n")
		switch h.Backend {
		case "harden":
			b.WriteString("# ward's policy on runc: hardened, sent to gVisor, or rejected (RuntimeClass ward).\n")
			b.WriteString("# io.containerd.runc.v2 makes containerd send runc options; the shim reads\n")
			fmt.Fprintf(&b, "# %s (or $WARD_CONFIG).\n", NodeConfigPath)
		default:
			fmt.Fprintf(&b, "# Every workload in %s (RuntimeClass %s). A runtime_type other than runc's makes\n", h.Backend, h.Name)
			b.WriteString("# containerd send the options as TOML, which can carry WardConfig.\n")
		}
		fmt.Fprintf(&b, "[%s%s]\n", table, h.Name)
		typ := runcRuntimeType
		if h.WardConfig != "" {
			typ = wardRuntimeType
		}
		fmt.Fprintf(&b, "  runtime_type = %s\n", tomlString(typ))
		fmt.Fprintf(&b, "  runtime_path = %s\n", tomlString(shim))
		b.WriteString("  # Lets ward.dev/untrusted and ward's other pod annotations reach the sandbox spec.\n")
		b.WriteString("  pod_annotations = [\"ward.dev/*\"]\n")
		fmt.Fprintf(&b, "[%s%s.options]\n", table, h.Name)
		fmt.Fprintf(&b, "  BinaryName = %s\n", tomlString(runc))
		fmt.Fprintf(&b, "  Root = %s\n", tomlString(RuncRoot))
		if systemd {
			b.WriteString("  SystemdCgroup = true\n")
		}
		if h.WardConfig != "" {
			fmt.Fprintf(&b, "  WardConfig = %s\n", tomlString(h.WardConfig))
		}
	}
	// Parse what was written, so a path that needed escaping can never
	// produce a file containerd refuses (and then refuses to start).
	var check map[string]any
	if err := toml.Unmarshal([]byte(b.String()), &check); err != nil {
		return nil, fmt.Errorf("writing the containerd drop-in: %w", err)
	}
	return []byte(b.String()), nil
}

// Subordinate ID files, where the default policy's user namespaces take
// their IDs from the "ward" entry.
const (
	SubUIDPath = "/etc/subuid"
	SubGIDPath = "/etc/subgid"
)

// subIDFiles gives /etc/subuid and /etc/subgid a "ward" entry when neither
// has one: the same run of userns.PoolBlocks blocks in both (ward maps user
// and group IDs alike), clear of every other entry of either file. The
// files are otherwise kept byte for byte; uninstall restores them from the
// backup the installer keeps, unless they changed since (a user was
// added), in which case they are left as they are. A node that already has
// a "ward" entry in either file keeps it: it is the operator's.
func (n Node) subIDFiles() ([]File, error) {
	var (
		data    [2][]byte
		modes   [2]os.FileMode
		entries []userns.SubIDEntry
	)
	for i, p := range []string{SubUIDPath, SubGIDPath} {
		modes[i] = 0o644
		b, err := os.ReadFile(filepath.Join(n.Root, p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", p, err)
		default:
			if fi, err := os.Stat(filepath.Join(n.Root, p)); err == nil {
				modes[i] = fi.Mode().Perm()
			}
		}
		es, err := userns.ParseSubID(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, e := range es {
			if e.User == PoolUser {
				return nil, nil
			}
		}
		data[i], entries = b, append(entries, es...)
	}
	r, err := userns.FreeRange(entries, userns.PoolBlocks*userns.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("choosing ward's user-namespace pool: %w", err)
	}
	line := fmt.Sprintf("%s:%d:%d\n", PoolUser, r.Start, r.Size)
	var files []File
	for i, p := range []string{SubUIDPath, SubGIDPath} {
		b := data[i]
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		files = append(files, File{Path: p, Data: append(b, line...), Mode: modes[i]})
	}
	return files, nil
}

// PoolUser is the subordinate-ID entry the default policy's pool names.
const PoolUser = "ward"
