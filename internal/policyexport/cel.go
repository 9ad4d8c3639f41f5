// Package policyexport writes a ward policy as policies an API server
// enforces: a ValidatingAdmissionPolicy (CEL) that denies at admission what
// ward would reject on the node, and warns, as Pod Security Admission does,
// for what ward would sandbox. The expressions judge the pod template the
// way package manifest translates it for the node, with the same
// worst-case assumptions where only the node knows.
package policyexport

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ward-runtime/ward/internal/capability"
	"github.com/ward-runtime/ward/internal/manifest"
	"github.com/ward-runtime/ward/policy"
)

// The variables every expression may use (ValidatingAdmissionPolicy's
// spec.variables, evaluated in order).
func variables() [][2]string {
	tmpl := func(f string) string {
		return "object.kind == 'Pod' ? object." + f +
			" : object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template." + f +
			" : object.spec.template." + f
	}
	return [][2]string{
		{"podSpec", tmpl("spec")},
		{"podMeta", "object.kind == 'Pod' ? object.metadata : object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.?metadata.orValue({}) : object.spec.template.?metadata.orValue({})"},
		// Not "namespace": a reserved word the API server's CEL refuses
		// as an identifier.
		{"podNamespace", "object.metadata.?namespace.orValue(request.namespace)"},
		{"containers", "variables.podSpec.?initContainers.orValue([]) + variables.podSpec.containers + variables.podSpec.?ephemeralContainers.orValue([])"},
		// hostPath volumes with their paths normalised as the node's
		// checks read them: repeated and trailing slashes and /./ gone,
		// /var/run read as /run. Kubernetes refuses ".." in a hostPath.
		// Both values are strings: the API server's type checker refuses
		// a conditional or a map literal mixing string and dyn.
		{"hostVolumes", "variables.podSpec.?volumes.orValue([]).filter(v, has(v.hostPath)).map(v, {'name': string(v.name), 'path': " +
			normalize("v.hostPath.path") + "})"},
	}
}

// normalize is a CEL expression cleaning the path expression p. Eight
// passes of '//' -> '/' collapse runs of up to 256 slashes; a path with
// more is left with '//', which no sensitive path matches, so hostPathOK
// refuses such paths outright.
func normalize(p string) string {
	e := "string(" + p + ").replace('/./', '/').replace('/./', '/')"
	for range 8 {
		e += ".replace('//', '/')"
	}
	e = "(" + e + ")"
	trimmed := "(" + e + ".endsWith('/') && " + e + ".size() > 1 ? " + e + ".substring(0, " + e + ".size() - 1) : " + e + ")"
	return "(" + trimmed + " == '/var/run' ? '/run' : " + trimmed + ".startsWith('/var/run/') ? '/run' + " + trimmed + ".substring(8) : " + trimmed + ")"
}

func quote(s string) string { return strconv.Quote(s) }

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// within is the CEL for "path expression p is dir or below it".
func within(p, dir string) string {
	if dir == "/" {
		return "true"
	}
	return "(" + p + " == " + quote(dir) + " || " + p + ".startsWith(" + quote(dir+"/") + "))"
}

// contains is the CEL for "the constant path inner is p or below it".
func contains(inner, p string) string {
	return "(" + p + " == '/' || " + p + " == " + quote(inner) + " || " + quote(inner) + ".startsWith(" + p + " + '/'))"
}

func priv() string { return "c.?securityContext.?privileged.orValue(false)" }

func podFlag(f string, def bool) string {
	return "variables.podSpec.?" + f + ".orValue(" + strconv.FormatBool(def) + ")"
}

// mounted is the CEL for "container c mounts a hostPath volume v (with its
// volumeMount m) for which cond holds".
func mounted(cond string) string {
	return "c.?volumeMounts.orValue([]).exists(m, variables.hostVolumes.exists(v, v.name == m.name && " + cond + "))"
}

func socketExposed() string {
	var ors []string
	for _, s := range policy.ContainerSockets() {
		ors = append(ors, contains(s, "v.path"))
	}
	// A rootless engine's socket below /run/user, as the node check reads
	// it.
	ors = append(ors, "("+within("v.path", "/run/user")+" && (v.path.endsWith('/docker.sock') || v.path.endsWith('/podman.sock') || v.path == '/run/user' || v.path.split('/').size() <= 4 || v.path.endsWith('/podman')))")
	return "(" + strings.Join(ors, " || ") + ")"
}

func sensitive() string {
	var ors []string
	for _, d := range policy.SensitiveDirs() {
		e := contains(d.Path, "v.path")
		if d.Subtree {
			e = "(" + e + " || " + within("v.path", d.Path) + ")"
		}
		ors = append(ors, e)
	}
	// A path the normalisation could not clean is refused.
	ors = append(ors, "v.path.contains('//')")
	return "(" + strings.Join(ors, " || ") + ")"
}

func readOnly() string { return "m.?readOnly.orValue(false)" }

// capName is manifest.CapabilityName in CEL.
func capName(a string) string {
	return "(" + a + ".upperAscii().startsWith('CAP_') ? " + a + ".upperAscii().substring(4) : " + a + ".upperAscii())"
}

func capList(f string) string { return "c.?securityContext.?capabilities.?" + f + ".orValue([])" }

// hasCap is the CEL for "container c holds capability name (CAP_ form)
// after containerd's defaults, add and drop".
func hasCap(name string) string {
	short := strings.TrimPrefix(name, "CAP_")
	in := func(f, n string) string { return capList(f) + ".exists(a, " + capName("a") + " == " + quote(n) + ")" }
	def := "false"
	if slices.Contains(manifest.DefaultCapabilities(), name) {
		def = "true"
	}
	return "(" + priv() + " || (!" + in("drop", short) + " && (" + in("add", short) + " || (!" + in("drop", "ALL") + " && (" + in("add", "ALL") + " || " + def + ")))))"
}

var dangerousCaps = map[string]string{
	policy.IDCapSysAdmin: "CAP_SYS_ADMIN", policy.IDCapSysModule: "CAP_SYS_MODULE", policy.IDCapSysPtrace: "CAP_SYS_PTRACE",
	policy.IDCapSysRawio: "CAP_SYS_RAWIO", policy.IDCapDacReadSearch: "CAP_DAC_READ_SEARCH", policy.IDCapNetAdmin: "CAP_NET_ADMIN",
	policy.IDCapBPF: "CAP_BPF", policy.IDCapPerfmon: "CAP_PERFMON", policy.IDCapSysBoot: "CAP_SYS_BOOT",
	policy.IDCapSyslog: "CAP_SYSLOG", policy.IDCapNetRaw: "CAP_NET_RAW",
}

// notBaseline is the CEL for cap-not-baseline: a capability beyond the
// baseline that has no check of its own.
func notBaseline() string {
	var own []string
	for _, c := range capability.Baseline() {
		own = append(own, strings.TrimPrefix(c, "CAP_"))
	}
	for _, c := range dangerousCaps {
		own = append(own, strings.TrimPrefix(c, "CAP_"))
	}
	slices.Sort(own)
	var others []string
	for _, c := range capability.All() {
		if !slices.Contains(own, strings.TrimPrefix(c, "CAP_")) {
			others = append(others, hasCap(c))
		}
	}
	return "(" + strings.Join(others, " || ") + ")"
}

func seccompType() string {
	return "c.?securityContext.?seccompProfile.?type.orValue(variables.podSpec.?securityContext.?seccompProfile.?type.orValue('Unconfined'))"
}

func runAsUser() string {
	return "c.?securityContext.?runAsUser.orValue(variables.podSpec.?securityContext.?runAsUser.orValue(-1))"
}

func runAsNonRoot() string {
	return "c.?securityContext.?runAsNonRoot.orValue(variables.podSpec.?securityContext.?runAsNonRoot.orValue(false))"
}

// procFD is IsProcFD on the workingDir, refusing what it cannot clean.
func procFD() string {
	parts := "c.?workingDir.orValue('').split('/').filter(e, e != '' && e != '.')"
	return "(" + parts + ".exists(e, e == '..') || (" + parts + ".size() > 0 && " + parts + "[0] == 'proc' && " + parts + ".exists(e, e == 'fd')))"
}

func annotation(key string) string {
	return "variables.podMeta.?annotations[?" + quote(key) + "]"
}

// globRegexp turns a policy glob ('*' matches any run, '/' included) into
// an RE2 pattern.
func globRegexp(g string) string {
	parts := strings.Split(g, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return "^" + strings.Join(parts, ".*") + "$"
}

func matchAny(expr string, globs []string) string {
	var ors []string
	for _, g := range globs {
		ors = append(ors, expr+".matches("+quote(globRegexp(g))+")")
	}
	return "(" + strings.Join(ors, " || ") + ")"
}

// registry is policy.Registry in CEL.
func registry() string {
	first := "c.image.split('/')[0]"
	return "(c.image.contains('/') && (" + first + ".contains('.') || " + first + ".contains(':') || " + first + " == 'localhost') ? " + first + " : 'docker.io')"
}

// Exporter builds expressions for one policy.
type Exporter struct {
	p *policy.Policy
	// node says which pod annotations reach the specs; a rule can match
	// only those.
	node manifest.Node
}

// NewExporter prepares p for nodes like n.
func NewExporter(p *policy.Policy, n manifest.Node) *Exporter {
	return &Exporter{p: p, node: n}
}

// finding is the CEL, over container c and the variables, that is true when
// ward's check id finds its shape in c's spec or its pod's.
func (x *Exporter) finding(id string) (string, error) {
	if cp, ok := dangerousCaps[id]; ok {
		return hasCap(cp), nil
	}
	switch id {
	case policy.IDPrivileged, policy.IDHostDevices, policy.IDDeviceCgroupAllowAll, policy.IDSysfsWritable, policy.IDCgroupfsWritable:
		return priv(), nil
	case policy.IDMaskedPathsEmptied, policy.IDReadonlyPathsEmptied:
		return "(" + priv() + " || c.?securityContext.?procMount.orValue('Default') == 'Unmasked')", nil
	case policy.IDHostPID:
		return podFlag("hostPID", false), nil
	case policy.IDHostIPC:
		return podFlag("hostIPC", false), nil
	case policy.IDHostNetwork, policy.IDHostUTS:
		return podFlag("hostNetwork", false), nil
	case policy.IDHostUser:
		return podFlag("hostUsers", true), nil
	case policy.IDHostCgroup, policy.IDNoPidsLimit:
		// No manifest field changes these: containerd gives pods no
		// cgroup namespace on cgroup v1 nodes, and the pids limit is
		// the kubelet's, at the pod's cgroup.
		return "true", nil
	case policy.IDNamespaceJoined, policy.IDPodContextUnknown, policy.IDSeccompDefaultAllow:
		// Never from a pod: its containers join their own sandbox, and
		// no pod field sets a default-allow profile.
		return "false", nil
	case policy.IDContainerSocketMount:
		return mounted(socketExposed()), nil
	case policy.IDSensitiveHostPathWritable:
		// hostIPC binds the host's /dev/shm writable.
		return "(" + podFlag("hostIPC", false) + " || " + mounted(sensitive()+" && !"+readOnly()) + ")", nil
	case policy.IDSensitiveHostPath:
		return mounted(sensitive() + " && " + readOnly()), nil
	case policy.IDHostPathMount:
		return "(" + podFlag("hostIPC", false) + " || " + mounted("true") + ")", nil
	case policy.IDCapNotBaseline:
		return notBaseline(), nil
	case policy.IDSeccompUnconfined:
		// No profile anywhere: the kubelet's default, Unconfined, as
		// ward scan assumes.
		return "(" + priv() + " || " + seccompType() + " == 'Unconfined')", nil
	case policy.IDNoNewPrivsOff:
		return "(" + priv() + " || c.?securityContext.?allowPrivilegeEscalation.orValue(true))", nil
	case policy.IDRunAsRoot:
		// No user anywhere: the image's, judged as root unless
		// runAsNonRoot makes the kubelet refuse root.
		return "(" + runAsUser() + " == 0 || (" + runAsUser() + " == -1 && !" + runAsNonRoot() + "))", nil
	case policy.IDWritableRootfs:
		return "!c.?securityContext.?readOnlyRootFilesystem.orValue(false)", nil
	case policy.IDProcFDCwd:
		return procFD(), nil
	case policy.IDApparmorUnconfined:
		return "(" + priv() + " || c.?securityContext.?appArmorProfile.?type.orValue(variables.podSpec.?securityContext.?appArmorProfile.?type.orValue('')) == 'Unconfined')", nil
	case policy.IDNoMemoryLimit:
		return "!('memory' in c.?resources.?limits.orValue({}))", nil
	case policy.IDUnsafeSysctl:
		return "variables.podSpec.?securityContext.?sysctls.orValue([]).exists(s, !(s.name.replace('/', '.') in " + list(policy.SafeSysctls()) + "))", nil
	case policy.IDSysctlInjection:
		return "variables.podSpec.?securityContext.?sysctls.orValue([]).exists(s, s.name.contains('+') || s.name.contains('=') || s.value.contains('+') || s.value.contains('='))", nil
	case policy.IDUntrustedWorkload:
		return x.untrusted(), nil
	case policy.IDMountPropagationShared:
		// Bidirectional is the API's name for an rshared bind.
		return "c.?volumeMounts.orValue([]).exists(m, m.?mountPropagation.orValue('') == 'Bidirectional')", nil
	case policy.IDSelinuxUnconfined:
		return "(c.?securityContext.?seLinuxOptions.?type.orValue(variables.podSpec.?securityContext.?seLinuxOptions.?type.orValue('')) in ['spc_t', 'unconfined_t'])", nil
	case policy.IDHostMount, policy.IDNamespaceForeign, policy.IDHostSocketMount, policy.IDKernelFSMount,
		policy.IDBlockDeviceMount, policy.IDRootfsHost, policy.IDRootfsUnproven, policy.IDHookNotAllowed,
		policy.IDHostDiskDevice, policy.IDNetDeviceMoved, policy.IDMappingHostRoot, policy.IDSeccompHandoff,
		policy.IDRealtimePriority, policy.IDIntelRdt:
		// Shapes no pod manifest can spell: they come from what the
		// container manager, a bundle author or the node adds (hooks,
		// root.path, devices, mount types), or from what a host path is
		// on the node (a socket's listener, a disk behind a name). The
		// node judges them; admission cannot see them (docs/admission.md).
		return "false", nil
	}
	return "", fmt.Errorf("check %s has no admission expression", id)
}

func (x *Exporter) untrusted() string {
	t := &x.p.Untrusted
	ors := []string{"false"}
	if t.Annotation != "" && x.node.Passes(t.Annotation) {
		ors = append(ors, annotation(t.Annotation)+".orValue('') == 'true'")
	}
	if len(t.Namespaces) > 0 {
		ors = append(ors, matchAny("variables.podNamespace", t.Namespaces))
	}
	if len(t.AllowedRegistries) > 0 {
		ors = append(ors, "!("+matchAny(registry(), t.AllowedRegistries)+" || "+matchAny("c.image", t.AllowedRegistries)+")")
	}
	return "(" + strings.Join(ors, " || ") + ")"
}

// filters is the CEL for a rule's or exemption's namespaces, images and
// annotations.
func (x *Exporter) filters(m *policy.Match) string {
	ands := []string{"true"}
	if len(m.Namespaces) > 0 {
		ands = append(ands, matchAny("variables.podNamespace", m.Namespaces))
	}
	if len(m.Images) > 0 {
		ands = append(ands, matchAny("c.image", m.Images))
	}
	keys := make([]string, 0, len(m.Annotations))
	for k := range m.Annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !x.node.Passes(k) {
			// The node never sees it: the rule cannot match there.
			return "false"
		}
		if want := m.Annotations[k]; want == "*" {
			ands = append(ands, annotation(k)+".hasValue()")
		} else {
			ands = append(ands, annotation(k)+".orValue('') == "+quote(want))
		}
	}
	return "(" + strings.Join(ands, " && ") + ")"
}

// unwaived is the CEL for "check id finds its shape in c, and no exemption
// that matches c waives it".
func (x *Exporter) unwaived(id string) (string, error) {
	e, err := x.finding(id)
	if err != nil {
		return "", err
	}
	for i := range x.p.Exemptions {
		ex := &x.p.Exemptions[i]
		if slices.Contains(ex.Waive, "*") || slices.Contains(ex.Waive, id) {
			e += " && !" + x.filters(&ex.Match)
		}
	}
	return "(" + e + ")", nil
}

// ruleMatch is the CEL, over container c, for "rule r matches c", with
// ids the findings to test (all of the rule's, or one of them).
func (x *Exporter) ruleMatch(r *policy.Rule, ids []string) (string, error) {
	ands := []string{x.filters(&r.Match)}
	if len(ids) > 0 {
		var ors []string
		for _, id := range ids {
			e, err := x.unwaived(id)
			if err != nil {
				return "", fmt.Errorf("rule %s: %w", r.Name, err)
			}
			ors = append(ors, e)
		}
		ands = append(ands, "("+strings.Join(ors, " || ")+")")
	}
	if r.Match.Severity != nil {
		var ors []string
		eval := policy.NewEvaluator(x.p)
		for _, c := range eval.Checks() {
			if c.Severity < *r.Match.Severity {
				continue
			}
			e, err := x.unwaived(c.ID)
			if err != nil {
				return "", fmt.Errorf("rule %s: %w", r.Name, err)
			}
			ors = append(ors, e)
		}
		ands = append(ands, "("+strings.Join(append(ors, "false"), " || ")+")")
	}
	return strings.Join(ands, " && "), nil
}
