package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/capability"
)

// Action is what ward does with a container. Exactly one is chosen.
type Action string

const (
	// Harden rewrites the spec and runs it on runc.
	Harden Action = "harden"
	// Sandbox runs the spec, unchanged, in a sandbox runtime.
	Sandbox Action = "sandbox"
	// Reject refuses to run the container.
	Reject Action = "reject"
)

// strictness orders actions; when rules disagree the strictest wins, so that
// no rule can undo another's rejection by coming first.
func (a Action) strictness() int {
	switch a {
	case Harden:
		return 1
	case Sandbox:
		return 2
	case Reject:
		return 3
	}
	return 0
}

// Backend is the runtime a decided container runs on.
type Backend string

const (
	Runc   Backend = "runc"
	GVisor Backend = "gvisor"
	Kata   Backend = "kata"
)

// Mode says whether decisions are enforced.
type Mode string

const (
	// Enforce applies every decision.
	Enforce Mode = "enforce"
	// Audit decides and logs, but runs every container unchanged on runc.
	Audit Mode = "audit"
)

// APIVersion is the only policy schema version ward reads.
const APIVersion = "ward.dev/v1alpha1"

// MaxPolicySize bounds a policy file.
const MaxPolicySize = 1 << 20

// Policy is a node's policy. It is a value: once parsed and validated it is
// never modified, so evaluators can share it.
type Policy struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Extends is "default" for a node file that states only its
	// differences from the embedded default (see extend), or "".
	Extends string `yaml:"extends"`
	// Mode is enforce (default) or audit.
	Mode Mode `yaml:"mode"`
	// Node describes where this node keeps runtime-managed files.
	Node Node `yaml:"node"`
	// Untrusted says which workloads count as untrusted.
	Untrusted Trust `yaml:"untrusted"`
	// Harden configures the rewrite.
	Harden HardenSettings `yaml:"harden"`
	// Rules choose actions from findings and workload metadata.
	Rules []Rule `yaml:"rules"`
	// Exemptions waive findings or skip harden steps, always with a reason.
	Exemptions []Exemption `yaml:"exemptions"`
	// Landlock chooses the Landlock profile of hardened containers.
	Landlock Landlock `yaml:"landlock"`
	// Userns gives hardened containers a user namespace.
	Userns Userns `yaml:"userns"`
	// Detection answers escape attempts at run time (docs/detection.md).
	Detection Detection `yaml:"detection"`

	// Source is where the policy came from, for explanations.
	Source string `yaml:"-"`
}

// Node holds the places on this node whose bind mounts are runtime-managed
// (hosts files, resolv.conf, emptyDirs, service-account tokens) rather than
// host paths a user asked for.
type Node struct {
	// KubeletRoot is the kubelet's root directory; mounts from its pods/
	// subtree are volumes the kubelet manages.
	KubeletRoot string `yaml:"kubeletRoot"`
	// RuntimeDirs are container managers' own directories (containerd root
	// and state, Docker's containers/ and volumes/, Podman's storage).
	RuntimeDirs []string `yaml:"runtimeDirs"`
	// VolumeDirs are container managers' named-volume directories
	// (Docker's and Podman's volumes/): <dir>/<name>/_data is a volume
	// the manager made for containers, shared between them by design, not
	// a host directory.
	VolumeDirs []string `yaml:"volumeDirs"`
	// RootfsDirs are where container managers keep root filesystems
	// outside the bundle (Docker's and Podman's overlay mounts). A root
	// below one of them, or inside the bundle, is a container's own.
	RootfsDirs []string `yaml:"rootfsDirs"`
	// WorkloadDirs are host directories the node's operator gives to
	// workloads (a CI node's build workspaces): a bind mount from inside
	// one is idmapped like a volume, so container root owns there what
	// host root owns. Empty by default: every other host path stays
	// unmapped (docs/userns.md).
	WorkloadDirs []string `yaml:"workloadDirs"`
	// Hooks are the OCI hooks this node's own tooling adds (Docker's
	// libnetwork hook, the NVIDIA hook): hooks run on the host as root,
	// so any other hook is refused.
	Hooks []HookRule `yaml:"hooks"`
	// SeccompListeners are the seccomp user-notification sockets of this
	// node's own agents; a profile that hands system calls to any other
	// listener is refused.
	SeccompListeners []string `yaml:"seccompListeners"`
}

// HookRule allows one hook binary, compared by identity (the file it
// resolves to on the node), optionally only with a given first argument:
// dockerd runs every one of its helpers by argv[0].
type HookRule struct {
	Path string `yaml:"path"`
	Arg0 string `yaml:"arg0"`
}

// Trust marks workloads as untrusted; each mark produces the
// untrusted-workload finding, which rules can route to a sandbox.
type Trust struct {
	// Annotation marks a workload untrusted when set to "true".
	Annotation string `yaml:"annotation"`
	// Namespaces whose workloads are untrusted (globs).
	Namespaces []string `yaml:"namespaces"`
	// AllowedRegistries lists the image registries that are trusted (globs).
	// Empty: every registry is trusted.
	AllowedRegistries []string `yaml:"allowedRegistries"`
}

// HardenSettings configures the rewrite steps.
type HardenSettings struct {
	// Capabilities is the allow-list every hardened container is cut down to.
	Capabilities []string `yaml:"capabilities"`
}

// Rule maps a match to an action.
type Rule struct {
	Name string `yaml:"name"`
	// Reason is shown to the user with the decision.
	Reason  string  `yaml:"reason"`
	Match   Match   `yaml:"match"`
	Action  Action  `yaml:"action"`
	Backend Backend `yaml:"backend"`
}

// Match selects containers. Every condition given must hold; a match with no
// condition is refused, so that no rule matches everything by accident.
type Match struct {
	// Findings: any of these finding IDs is present (and not waived).
	Findings []string `yaml:"findings"`
	// Severity: any finding at or above this severity is present.
	Severity *Severity `yaml:"severity"`
	// Namespaces: the Kubernetes namespace matches one of these globs.
	Namespaces []string `yaml:"namespaces"`
	// Images: the image name matches one of these globs.
	Images []string `yaml:"images"`
	// Annotations: each key is present with this value ("*": any value).
	Annotations map[string]string `yaml:"annotations"`
}

// Exemption waives findings or skips harden steps for matching workloads.
// It is always shown in explanations, with its reason.
type Exemption struct {
	Name   string `yaml:"name"`
	Reason string `yaml:"reason"`
	Match  Match  `yaml:"match"`
	// Waive lists finding IDs that no rule sees for matching workloads
	// ("*": all of them).
	Waive []string `yaml:"waive"`
	// Skip lists harden steps not applied to matching workloads.
	Skip []string `yaml:"skip"`
}

//go:embed default.yaml
var defaultPolicy []byte

// DefaultYAML returns the policy embedded in ward.
func DefaultYAML() []byte { return bytes.Clone(defaultPolicy) }

// DefaultWithoutUserns is the embedded default policy with the
// user-namespace step turned off: for tests of everything else, which
// should not need an ID pool, and a starting point for nodes that cannot
// give one yet.
func DefaultWithoutUserns() []byte {
	return bytes.Replace(defaultPolicy, []byte("\n  enabled: true\n  pool: ward\n"), []byte("\n  enabled: false\n  pool: ward\n"), 1)
}

// Default returns the embedded default policy. It fails only if the binary
// was built with a broken default, which the tests refuse.
func Default() (*Policy, error) {
	return Parse(defaultPolicy, DefaultSource)
}

// DefaultSource is the embedded default policy's Source.
const DefaultSource = "embedded default policy"

// Load returns the node policy at path, or the embedded default when path
// is "": what every front door's "policy:" setting means.
func Load(path string) (*Policy, error) {
	if path == "" {
		return Default()
	}
	return LoadFile(path)
}

// LoadFile reads and validates a policy file.
func LoadFile(name string) (*Policy, error) {
	data, err := bounded.ReadFile(name, MaxPolicySize)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return Parse(data, name)
}

// Read reads and validates a policy from r (`ward policy check -`), named
// name in errors.
func Read(r io.Reader, name string) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("%s: over the %d-byte limit", name, MaxPolicySize)
	}
	return Parse(data, name)
}

// Parse decodes and validates a policy. Errors carry the file name and line.
func Parse(data []byte, source string) (*Policy, error) {
	p, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	tree := func() (*yaml.Node, error) { return parseTree(data) }
	if p.Extends != "" {
		if p.Extends != "default" {
			return nil, locate(tree, source, errAt(fmt.Errorf("want default (the embedded policy) or nothing, got %q", p.Extends), "extends"))
		}
		merged, err := extend(defaultPolicy, data)
		if err != nil {
			return nil, fmt.Errorf("%s: extending the default policy: %w", source, err)
		}
		if p, err = decode(merged); err != nil {
			return nil, fmt.Errorf("%s: extending the default policy: %w", source, err)
		}
		p.Extends = "default"
		tree = func() (*yaml.Node, error) { return extendTree(defaultPolicy, data) }
	}
	p.Source = source
	if err := p.validate(); err != nil {
		return nil, locate(tree, source, err)
	}
	return p, nil
}

// Revalidate checks a policy that did not come from Parse itself (a
// front door's cached copy of one that did) and derives again what
// validation derives (the resolved Landlock profiles), so that the copy
// is the parsed policy exactly.
func (p *Policy) Revalidate() error { return p.validate() }

// decode reads exactly one YAML document strictly: unknown fields refused,
// booleans as booleans (Bool).
func decode(data []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty policy")
		}
		return nil, err
	}
	if err := oneDocument(dec); err != nil {
		return nil, err
	}
	return &p, nil
}

// locate adds the line of a validation error's field. The document's nodes
// are parsed only to locate an error: a second parse of every valid policy
// is a shim start's cost. For a node file that extends the default, the
// tree is the merged one, whose nodes keep the lines of the file they came
// from.
func locate(tree func() (*yaml.Node, error), source string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		if root, terr := tree(); terr == nil {
			return fmt.Errorf("%s: line %d: %s: %w", source, lineOf(root, fe.keys...), fe.field(), fe.err)
		}
	}
	return fmt.Errorf("%s: %w", source, err)
}

// parseTree is data's node tree.
func parseTree(data []byte) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	return &root, nil
}

// fieldError locates a validation error in the document.
type fieldError struct {
	keys []any // string keys and int indexes from the document root
	err  error
}

func (e *fieldError) Error() string { return e.field() + ": " + e.err.Error() }

func (e *fieldError) field() string {
	var b strings.Builder
	for _, k := range e.keys {
		switch k := k.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		}
	}
	return b.String()
}

func errAt(err error, keys ...any) error { return &fieldError{keys: keys, err: err} }

// lineOf finds the line of the deepest node on the path that exists.
func lineOf(root *yaml.Node, keys ...any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, k := range keys {
		var next *yaml.Node
		switch k := k.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

func (p *Policy) validate() error {
	if p.APIVersion != APIVersion {
		return errAt(fmt.Errorf("want %q, got %q", APIVersion, p.APIVersion), "apiVersion")
	}
	if p.Kind != "Policy" {
		return errAt(fmt.Errorf("want \"Policy\", got %q", p.Kind), "kind")
	}
	switch p.Mode {
	case "":
		p.Mode = Enforce
	case Enforce, Audit:
	default:
		return errAt(fmt.Errorf("want enforce or audit, got %q", p.Mode), "mode")
	}
	if p.Node.KubeletRoot == "" {
		p.Node.KubeletRoot = "/var/lib/kubelet"
	}
	if err := validGlobs(p.Untrusted.Namespaces, "a namespace", namespaceChars, "untrusted", "namespaces"); err != nil {
		return err
	}
	if err := validGlobs(p.Untrusted.AllowedRegistries, "an image name", imageChars, "untrusted", "allowedRegistries"); err != nil {
		return err
	}
	for i, d := range p.Node.RuntimeDirs {
		if !strings.HasPrefix(d, "/") || hostPath(d) == "/" {
			return errAt(fmt.Errorf("%q is not an absolute directory below /", d), "node", "runtimeDirs", i)
		}
	}
	for _, l := range []struct {
		name string
		dirs []string
	}{{"volumeDirs", p.Node.VolumeDirs}, {"rootfsDirs", p.Node.RootfsDirs}, {"workloadDirs", p.Node.WorkloadDirs}, {"seccompListeners", p.Node.SeccompListeners}} {
		for i, d := range l.dirs {
			if !strings.HasPrefix(d, "/") || hostPath(d) == "/" {
				return errAt(fmt.Errorf("%q is not an absolute path below /", d), "node", l.name, i)
			}
		}
	}
	for i, d := range p.Node.WorkloadDirs {
		for _, sd := range nodeSensitive(p) {
			if d := hostPath(d); within(sd.path, d) || sd.subtree && within(d, sd.path) {
				return errAt(fmt.Errorf("%q is or holds %s, a sensitive host directory: it cannot be given to workloads", d, sd.path), "node", "workloadDirs", i)
			}
		}
	}
	for i, h := range p.Node.Hooks {
		if !strings.HasPrefix(h.Path, "/") || hostPath(h.Path) == "/" {
			return errAt(fmt.Errorf("%q is not an absolute file path", h.Path), "node", "hooks", i, "path")
		}
	}
	for i, c := range p.Harden.Capabilities {
		if !capability.Known(c) {
			return errAt(fmt.Errorf("unknown capability %q", c), "harden", "capabilities", i)
		}
	}
	if p.Harden.Capabilities == nil {
		p.Harden.Capabilities = capability.Baseline()
	}
	if err := p.Landlock.validate(); err != nil {
		return err
	}
	if err := p.Detection.validate(); err != nil {
		return err
	}
	if err := p.Userns.validate(); err != nil {
		return err
	}
	known := knownIDs()
	names := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Name == "" {
			return errAt(errors.New("missing"), "rules", i, "name")
		}
		if names[r.Name] {
			return errAt(fmt.Errorf("duplicate rule name %q", r.Name), "rules", i, "name")
		}
		names[r.Name] = true
		switch r.Action {
		case Harden, Reject:
			if r.Backend != "" {
				return errAt(fmt.Errorf("backend is only for action sandbox, not %s", r.Action), "rules", i, "backend")
			}
		case Sandbox:
			// Which sandbox backends exist is the node's to say (its
			// backends table); the policy only names one.
			if r.Backend == "" || r.Backend == Runc {
				return errAt(fmt.Errorf("sandbox needs a sandbox backend (gvisor, kata or one of the node's backends), got %q", r.Backend), "rules", i, "backend")
			}
		default:
			return errAt(fmt.Errorf("want harden, sandbox or reject, got %q", r.Action), "rules", i, "action")
		}
		if r.Reason == "" {
			return errAt(errors.New("missing: every decision is explained to the user"), "rules", i, "reason")
		}
		if err := r.Match.validate(known); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				fe.keys = append([]any{"rules", i, "match"}, fe.keys...)
			}
			return err
		}
	}
	for i := range p.Exemptions {
		e := &p.Exemptions[i]
		if e.Name == "" {
			return errAt(errors.New("missing"), "exemptions", i, "name")
		}
		if e.Reason == "" {
			return errAt(errors.New("missing: every exemption says why"), "exemptions", i, "reason")
		}
		if len(e.Match.Annotations) > 0 {
			return errAt(errors.New("an exemption cannot match annotations: a pod author sets them, and annotations may only tighten a decision (docs/threat-model.md); match namespaces or images"), "exemptions", i, "match", "annotations")
		}
		if len(e.Match.Findings) > 0 || e.Match.Severity != nil {
			return errAt(errors.New("exemptions match workloads (namespaces, images, annotations), not findings; list findings under waive"), "exemptions", i, "match")
		}
		if err := e.Match.validate(known); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				fe.keys = append([]any{"exemptions", i, "match"}, fe.keys...)
			}
			return err
		}
		if len(e.Waive) == 0 && len(e.Skip) == 0 {
			return errAt(errors.New("an exemption must waive findings or skip steps"), "exemptions", i)
		}
		for j, id := range e.Waive {
			if id != "*" && !known[id] {
				return errAt(fmt.Errorf("unknown finding %q", id), "exemptions", i, "waive", j)
			}
		}
		for j, st := range e.Skip {
			if !slices.Contains(Steps(), st) {
				return errAt(fmt.Errorf("unknown harden step %q (want one of %s)", st, strings.Join(Steps(), ", ")), "exemptions", i, "skip", j)
			}
		}
	}
	return nil
}

func knownIDs() map[string]bool {
	ids := map[string]bool{}
	for _, c := range catalog() {
		ids[c.ID] = true
	}
	return ids
}

func (m *Match) validate(known map[string]bool) error {
	if len(m.Findings) == 0 && m.Severity == nil && len(m.Namespaces) == 0 && len(m.Images) == 0 && len(m.Annotations) == 0 {
		return errAt(errors.New("empty: give findings, severity, namespaces, images or annotations"))
	}
	for i, id := range m.Findings {
		if !known[id] {
			return errAt(fmt.Errorf("unknown finding %q (see `ward checks`)", id), "findings", i)
		}
	}
	if err := validGlobs(m.Namespaces, "a namespace", namespaceChars, "namespaces"); err != nil {
		return err
	}
	return validGlobs(m.Images, "an image name", imageChars, "images")
}
