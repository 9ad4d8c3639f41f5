// Package critest runs cri-tools' CRI conformance suite (critest v1.37.0)
// against the plain runc handler and against ward's shim in audit and in
// enforce mode, on one private containerd, and compares the results.
//
// It runs only with WARD_CRITEST=1 (and WARD_INTEGRATION=1, root): the suite
// takes a few minutes per handler. critest and crane come from
// `integration/install-deps.sh critest`. No registry is reachable, so the
// test serves busybox-based stand-ins for the images critest pulls from a
// local registry (crane registry serve on 127.0.0.1), and points critest at
// it with hosts.toml mirrors for the registries critest's own source names.
package critest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
	"github.com/ward-runtime/ward/internal/nodeconfig"
)

// skip are specs that need images, plugins or host setup this machine does
// not have; they are skipped for every handler alike.
const skip = `with digest|NoNewPrivs|host port and container port|HostPID|ContainerPID|container log`

func TestCritest(t *testing.T) {
	if os.Getenv("WARD_CRITEST") != "1" {
		t.Skip("critest: set WARD_CRITEST=1")
	}
	harness.Require(t)
	critest, err := exec.LookPath("critest")
	if err != nil {
		t.Fatalf("critest not on PATH (integration/install-deps.sh critest): %v", err)
	}
	crane, err := exec.LookPath("crane")
	if err != nil {
		t.Fatalf("crane not on PATH (integration/install-deps.sh critest): %v", err)
	}
	runsc, _ := exec.LookPath("runsc")
	runc, _ := exec.LookPath("runc")
	shimBin := harness.WardBin(t, "containerd-shim-ward-v2")

	dir := harness.NewDir(t)
	reg := startRegistry(t, crane, dir)
	buildImages(t, crane, reg, dir)

	state := map[string]string{"ward": filepath.Join(dir, "ward"), "ward-audit": filepath.Join(dir, "ward-audit")}
	auditPolicy := filepath.Join(dir, "audit-policy.yaml")
	harness.WriteAuditPolicy(t, auditPolicy)
	cfgs := map[string]string{}
	for h, s := range state {
		c := "stateDir: " + s + "\nbackends:\n  runsc: " + runsc + "\n" + harness.UsernsConfig(t, dir)
		if h == "ward-audit" {
			c += "policy: " + auditPolicy + "\n"
		}
		cfgs[h] = filepath.Join(dir, h+".yaml")
		write(t, cfgs[h], c)
	}
	// Both ward handlers are registered as `ward install` registers the
	// node's: runc's runtime_type (so containerd sends runc options, which
	// its CRI needs for hostUsers: false pods) with the configuration in
	// $WARD_CONFIG. containerd runs with the audit configuration for
	// the runc and ward-audit suites, then is restarted with the enforcing
	// one for the ward suite.
	var rts []harness.Runtime
	for _, h := range []string{"ward", "ward-audit"} {
		rts = append(rts, harness.Runtime{
			Name: h, Path: shimBin,
			Options: map[string]any{"BinaryName": runc, "Root": filepath.Join(dir, "runc-"+h)},
		})
	}
	shimEnv := func(h string) []string { return []string{nodeconfig.EnvConfig + "=" + cfgs[h]} }
	cd := harness.StartContainerd(t, harness.Config{Dir: dir, Runtimes: rts, Env: shimEnv("ward-audit"), RegistryConfigPath: mirrors(t, reg, dir)})

	if focus := os.Getenv("WARD_CRITEST_FOCUS"); focus != "" {
		focusOnly(t, critest, cd, focus, dir, "runc", "ward-audit")
		cd.RestartWithEnv(shimEnv("ward"))
		focusOnly(t, critest, cd, focus, dir, "ward")
		return
	}

	results := map[string]*suite{}
	for _, h := range []string{"runc", "ward-audit"} {
		results[h] = runSuite(t, critest, cd, reg, h, dir)
		t.Logf("%-10s %d passed, %d failed, %d skipped (%s)", h, len(results[h].passed), len(results[h].failed), len(results[h].skipped), results[h].took)
	}
	base := results["runc"]
	// The stand-ins are only useful if the baseline mostly passes (about
	// 100 of 142 specs with this skip list): a broken setup would make every
	// handler fail alike and "equal".
	if len(base.passed) < 90 {
		log, _ := os.ReadFile(filepath.Join(dir, "critest-runc.log"))
		var errs []string
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "rror") && len(errs) < 15 {
				errs = append(errs, l)
			}
		}
		t.Fatalf("runc baseline passed only %d specs; the setup is broken:\n%s", len(base.passed), strings.Join(errs, "\n"))
	}
	for _, f := range base.failed {
		t.Logf("fails under runc too: %s: %s", f, base.messages[f])
	}

	// Audit mode must change nothing. A spec that failed under only one of
	// the two is run again, alone, under both: a flaky spec passes or fails
	// alike; a real difference repeats.
	for _, f := range symdiff(results["ward-audit"].failed, base.failed) {
		again := map[string]bool{}
		for _, h := range []string{"runc", "ward-audit"} {
			again[h] = runOne(t, critest, cd, h, f, dir)
		}
		if again["runc"] != again["ward-audit"] {
			t.Errorf("audit mode differs from runc on %q: passes under runc %v, under ward-audit %v", f, again["runc"], again["ward-audit"])
		} else {
			t.Logf("audit vs runc: %q differed once, then passed=%v under both (flaky)", f, again["runc"])
		}
	}

	cd.RestartWithEnv(shimEnv("ward"))
	results["ward"] = runSuite(t, critest, cd, reg, "ward", dir)
	t.Logf("%-10s %d passed, %d failed, %d skipped (%s)", "ward", len(results["ward"].passed), len(results["ward"].failed), len(results["ward"].skipped), results["ward"].took)

	// Every enforce-mode failure runc does not have must be explained by a
	// decision in ward's log. Each is run again alone, so that the decisions
	// it caused can be read off the log.
	logPath := filepath.Join(state["ward"], "decisions.jsonl")
	for _, f := range diff(results["ward"].failed, base.failed) {
		before := lines(logPath)
		passed := runOne(t, critest, cd, "ward", f, dir)
		decided := decisions(lines(logPath)[len(before):])
		if passed {
			t.Logf("ward (enforce): %q failed once, passed when run alone (flaky); decisions: %s", f, decided)
			continue
		}
		if decided == "" {
			t.Errorf("ward (enforce): %q fails with no decision of ward's to explain it: %s", f, results["ward"].messages[f])
			continue
		}
		why := policyFailure(f)
		if why == "" {
			t.Errorf("ward (enforce): %q fails and is not one of the policy's listed decisions (docs/shim.md)\n    failure: %s\n    ward: %s", f, firstLine(results["ward"].messages[f]), decided)
			continue
		}
		t.Logf("ward (enforce) fails %q: %s\n    failure: %s\n    ward: %s", f, why, firstLine(results["ward"].messages[f]), decided)
	}
}

// policyFailures are the specs ward's enforce mode fails because its
// default policy decides so, each with the decision (docs/shim.md lists
// them); matched as substrings of the spec's text. Any other enforce-only
// failure fails the test.
var policyFailures = []struct{ spec, decision string }{
	{"mount with 'rprivate'", privilegedRejected},
	{"mount with 'rshared'", privilegedRejected},
	{"mount with 'rslave'", privilegedRejected},
	{"should support Privileged is true", privilegedRejected},
	{"blocks setting hostname when privileged", privilegedRejected},
	{"should support unsafe sysctls", "an unsafe sysctl is refused at the sandbox (rule unsafe-sysctl)"},
	{"blocks setting hostname with SYS_ADMIN", "CAP_SYS_ADMIN runs in gVisor, whose kernel has no such hostname rule (sandbox-kernel-surface)"},
	{"should support adding capability", "CAP_NET_ADMIN runs in gVisor, where brctl behaves differently (sandbox-kernel-surface)"},
	{"nil profile, which is unconfined", seccompBaseline},
	{"seccomp unconfined on the container", seccompBaseline},
	{"should support starting container with volume", hostPathUnmapped},
	{"should support non-recursive readonly mounts", hostPathUnmapped},
	{"should support recursive readonly mounts", hostPathUnmapped},
	{"should support NamespaceMode_NODE", "every pod runs in ward's user namespace: the host's identity map is what ward replaces (container root is never host root)"},
}

const (
	privilegedRejected = "a privileged container is refused (rule reject-host-takeover: privileged, device-cgroup-allow-all)"
	seccompBaseline    = "ward's seccomp baseline is stacked on every hardened container, Unconfined included (kubelet's default: without it most pods would have none)"
	hostPathUnmapped   = "host paths stay unmapped under the user namespace: critest's hostPath is a root-owned 0700 directory container root cannot enter (node.workloadDirs would idmap it)"
)

func policyFailure(spec string) string {
	for _, p := range policyFailures {
		if strings.Contains(spec, p.spec) {
			return p.decision
		}
	}
	return ""
}

// focusOnly runs the specs WARD_CRITEST_FOCUS (a ginkgo focus regexp)
// names under each handler, instead of the whole suite, and shows what
// failed and what containerd and ward logged meanwhile: the way to look into
// one difference without the 20 minutes of three full runs.
func focusOnly(t *testing.T, critest string, cd *harness.Containerd, focus, dir string, handlers ...string) {
	for _, h := range handlers {
		before := len(lines(cd.Log))
		s := runFocused(t, critest, cd, h, focus, filepath.Join(dir, "focus-"+h+".xml"))
		t.Logf("%-10s passed %d, failed %d", h, len(s.passed), len(s.failed))
		for _, f := range s.failed {
			t.Logf("  FAILED %s: %s", f, s.messages[f])
		}
		if len(s.failed) > 0 {
			for _, l := range lines(cd.Log)[before:] {
				if strings.Contains(l, "level=error") || strings.Contains(l, "level=warn") || strings.Contains(l, "ward") {
					t.Logf("  containerd: %s", l)
				}
			}
		}
	}
}

// runOne runs one spec alone under handler and reports whether it passed.
func runOne(t *testing.T, critest string, cd *harness.Containerd, handler, spec, dir string) bool {
	t.Helper()
	// The report's name is "[It] <full text> [Serial]"-style: ginkgo
	// matches focus against the full text without the node type and
	// decorators.
	text := strings.TrimPrefix(spec, "[It] ")
	text = strings.TrimSuffix(text, " [Serial]")
	focus := regexp.QuoteMeta(text)
	s := runFocused(t, critest, cd, handler, focus, filepath.Join(dir, "one.xml"))
	if len(s.passed)+len(s.failed) != 1 {
		t.Errorf("critest --ginkgo.focus %q ran %d specs, want 1", focus, len(s.passed)+len(s.failed))
	}
	return len(s.passed) == 1 && len(s.failed) == 0
}

// runFocused runs the specs matching the ginkgo focus regexp under handler
// and reads their results from the JUnit report, written afresh to report.
func runFocused(t *testing.T, critest string, cd *harness.Containerd, handler, focus, report string) *suite {
	t.Helper()
	os.Remove(report)
	out, _ := exec.Command(critest,
		"--runtime-endpoint", "unix://"+cd.Socket, "--image-endpoint", "unix://"+cd.Socket,
		"--runtime-handler", handler, "--ginkgo.focus", focus,
		"--ginkgo.junit-report", report, "--ginkgo.no-color").CombinedOutput()
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("critest %s --ginkgo.focus %q: no report: %v\n%s", handler, focus, err, tail(out, 40))
	}
	return parseJUnit(t, data)
}

func lines(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// decisions summarizes decision-log lines: every decision that is not a
// plain harden, and the harden steps that changed something.
func decisions(ls []string) string {
	var out []string
	for _, l := range ls {
		var e struct {
			Event   string `json:"event"`
			Action  string `json:"action"`
			Backend string `json:"backend"`
			Rule    string `json:"rule"`
			Error   string `json:"error"`
			Changes []struct {
				Step   string `json:"step"`
				Detail string `json:"detail"`
			} `json:"changes"`
			Findings []struct {
				ID   string `json:"id"`
				Ward string `json:"ward"`
			} `json:"findings"`
			Workload struct {
				Kind string `json:"kind"`
			} `json:"workload"`
		}
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		d := e.Event + " " + e.Workload.Kind + ": " + e.Action
		if e.Action == "sandbox" {
			d += " in " + e.Backend
		}
		if e.Rule != "" {
			var ids []string
			for _, f := range e.Findings {
				if (strings.HasPrefix(f.Ward, "rejected") || strings.HasPrefix(f.Ward, "sandboxed")) && !slices.Contains(ids, f.ID) {
					ids = append(ids, f.ID)
				}
			}
			d += " (" + e.Rule + ": " + strings.Join(ids, ",") + ")"
		}
		var steps []string
		for _, c := range e.Changes {
			if !slices.Contains(steps, c.Step) {
				steps = append(steps, c.Step)
			}
		}
		if len(steps) > 0 {
			d += " [" + strings.Join(steps, ", ") + "]"
		}
		if e.Error != "" {
			d += " error: " + e.Error
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return strings.Join(out, " | ")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// symdiff lists what is in exactly one of a and b.
func symdiff(a, b []string) []string { return append(diff(a, b), diff(b, a)...) }

type suite struct {
	passed, failed, skipped []string
	// messages are the failure messages, by spec.
	messages map[string]string
	took     time.Duration
}

func runSuite(t *testing.T, critest string, cd *harness.Containerd, reg, handler, dir string) *suite {
	t.Helper()
	report := filepath.Join(dir, "critest-"+handler+".xml")
	start := time.Now()
	cmd := exec.Command(critest,
		"--runtime-endpoint", "unix://"+cd.Socket, "--image-endpoint", "unix://"+cd.Socket,
		"--runtime-handler", handler,
		"--ginkgo.skip", skip, "--ginkgo.junit-report", report, "--ginkgo.no-color", "--ginkgo.timeout", "20m")
	out, err := cmd.CombinedOutput()
	if err := os.WriteFile(filepath.Join(dir, "critest-"+handler+".log"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	data, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("critest %s: no report (%v): %v\n%s", handler, err, rerr, tail(out, 40))
	}
	s := parseJUnit(t, data)
	s.took = time.Since(start).Round(time.Second)
	if os.Getenv("WARD_CRITEST_KEEP") != "" {
		t.Logf("critest %s output: %s", handler, filepath.Join(dir, "critest-"+handler+".log"))
	}
	return s
}

func tail(b []byte, n int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func parseJUnit(t *testing.T, data []byte) *suite {
	t.Helper()
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Status  string `xml:"status,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parsing critest report: %v", err)
	}
	s := &suite{messages: map[string]string{}}
	for _, su := range doc.Suites {
		for _, c := range su.Cases {
			if strings.HasPrefix(c.Name, "[BeforeSuite]") || strings.HasPrefix(c.Name, "[AfterSuite]") || strings.HasPrefix(c.Name, "[SynchronizedBeforeSuite]") {
				if c.Failure == nil && c.Error == nil {
					continue
				}
			}
			switch {
			case c.Failure != nil || c.Error != nil:
				s.failed = append(s.failed, c.Name)
				if c.Failure != nil {
					s.messages[c.Name] = c.Failure.Message
				} else {
					s.messages[c.Name] = c.Error.Message
				}
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				s.skipped = append(s.skipped, c.Name)
			default:
				s.passed = append(s.passed, c.Name)
			}
		}
	}
	sort.Strings(s.failed)
	return s
}

// diff is a minus b.
func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRegistry serves an in-memory registry on a free loopback port.
func startRegistry(t *testing.T, crane, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(filepath.Join(dir, "registry"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(crane, "registry", "serve", "--address", addr, "--disk", filepath.Join(dir, "registry"))
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	for i := 0; i < 50; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("registry did not come up")
	return ""
}

// mirrors writes a hosts.toml per registry that critest pulls from, each
// mirrored to the local registry, and returns the directory. The registry
// names are read from cri-tools' own source (the module critest was built
// from) rather than written here: ward names no registry.
func mirrors(t *testing.T, reg, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", "sigs.k8s.io/cri-tools@"+criToolsVersion).Output()
	if err != nil {
		t.Fatalf("locating cri-tools %s: %v", criToolsVersion, err)
	}
	src := jq(t, out, ".Dir")
	hosts := map[string]bool{}
	re := regexp.MustCompile(`"([a-z0-9-]+(\.[a-z0-9-]+)+)(/[^"]*)?"`)
	for _, f := range []string{"pkg/framework/test_context.go", "pkg/validate/consts.go"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			// Image references and registry prefixes only: a bare
			// registry ("registry.k8s.io"), a prefix ending in "/" or a
			// reference with a tag. Import paths have neither.
			path := m[3]
			if path == "" && !strings.HasSuffix(m[1], ".io") || path != "" && !strings.HasSuffix(path, "/") && !strings.Contains(path, ":") {
				continue
			}
			hosts[m[1]] = true
		}
	}
	certs := filepath.Join(dir, "certs.d")
	for h := range hosts {
		write(t, filepath.Join(certs, h, "hosts.toml"), fmt.Sprintf("[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", reg))
	}
	t.Logf("mirrored to %s: %v", reg, slices.Sorted(maps.Keys(hosts)))
	return certs
}

// criToolsVersion is the cri-tools release critest is built from.
const criToolsVersion = "v1.37.0"

// buildImages pushes stand-ins for every image critest pulls, by repository
// path, to the local registry.
func buildImages(t *testing.T, crane, reg, dir string) {
	t.Helper()
	imgs := filepath.Join(dir, "images")
	script := filepath.Join(harness.RepoRoot(t), "integration/image/build-busybox.sh")
	if out, err := exec.Command(script, imgs).CombinedOutput(); err != nil {
		t.Fatalf("building busybox: %v\n%s", err, out)
	}
	layer := extractLayer(t, filepath.Join(imgs, "busybox.tar"), dir)
	// A layer with the users and groups critest's images define.
	users := filepath.Join(dir, "users")
	mustRun(t, "mkdir", "-p", users+"/etc", users+"/www")
	write(t, users+"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\ndefault-user:x:1000:1000::/home:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
	write(t, users+"/etc/group", "root:x:0:\nwww-data:x:33:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\nnobody:x:65534:\n")
	write(t, users+"/www/index.html", "<html><body>ward critest stand-in web server</body></html>\n")
	usersTar := filepath.Join(dir, "users.tar")
	mustRun(t, "tar", "-C", users, "-cf", usersTar, "etc", "www")

	push := func(ref string, extra []string, mutate ...string) {
		t.Helper()
		full := reg + "/" + ref
		args := []string{"append", "--insecure", "-f", layer, "-f", usersTar, "-t", full}
		for _, e := range extra {
			args = append(args, "-f", e)
		}
		if out, err := exec.Command(crane, args...).CombinedOutput(); err != nil {
			t.Fatalf("crane %v: %v\n%s", args, err, out)
		}
		m := append([]string{"mutate", "--insecure", "--set-platform", "linux/amd64", "-e", "PATH=/bin", "-t", full}, mutate...)
		m = append(m, full)
		if out, err := exec.Command(crane, m...).CombinedOutput(); err != nil {
			t.Fatalf("crane %v: %v\n%s", m, err, out)
		}
	}
	sh := []string{"--cmd", "sh"}
	web := func(port int) []string {
		return []string{"--entrypoint", "httpd", "--cmd", fmt.Sprintf("-f,-p,%d,-h,/www", port)}
	}
	push("e2e-test-images/busybox:1.29-2", nil, sh...)
	// Some specs name the default image without its tag.
	push("e2e-test-images/busybox:latest", nil, sh...)
	push("e2e-test-images/nginx:1.14-2", nil, web(80)...)
	push("e2e-test-images/httpd:2.4.39-4", nil, web(80)...)
	push("pause:3.9", nil, "--entrypoint", "sleep", "--cmd", "2147483647")
	const staging = "k8s-staging-cri-tools/"
	push(staging+"hostnet-nginx-amd64:latest", nil, web(12003)...)
	// distinct is a layer that makes an image differ from the others,
	// built once per name (a tarball holds its file's time: built twice it
	// would be two images).
	layers := map[string]string{}
	distinct := func(name, content string) string {
		if tarball, ok := layers[name]; ok {
			return tarball
		}
		d := filepath.Join(dir, "distinct-"+name)
		mustRun(t, "mkdir", "-p", d)
		write(t, filepath.Join(d, "id"), content+"\n")
		tarball := d + ".tar"
		mustRun(t, "tar", "-C", d, "-cf", tarball, "id")
		layers[name] = tarball
		return tarball
	}
	// Each its own image, but test-image-tags' three tags, which critest
	// wants as one image with three tags: the image manager's specs count
	// an image's repository tags, and had two of these the same digest (or
	// busybox's), a spec that ran after the other's pull would see its tag
	// too, depending on critest's random order.
	for _, ref := range []string{"test-image-latest:latest", "test-image-tag:test", "test-image-tag:all",
		"test-image-tags:1", "test-image-tags:2", "test-image-tags:3"} {
		key := ref
		if repo, _, _ := strings.Cut(ref, ":"); repo == "test-image-tags" {
			key = repo
		}
		push(staging+ref, []string{distinct(key, key)}, sh...)
	}
	for i := 1; i <= 3; i++ {
		// Different images: one more layer each.
		push(fmt.Sprintf("%stest-image-%d:latest", staging, i), []string{distinct(strconv.Itoa(i), strconv.Itoa(i))}, sh...)
	}
	for ref, user := range map[string]string{
		"test-image-user-uid:latest":            "1002",
		"test-image-user-username:latest":       "www-data",
		"test-image-user-uid-group:latest":      "1003:1003",
		"test-image-user-username-group:latest": "www-data:www-data",
		"test-image-predefined-group:latest":    "1000",
	} {
		push(staging+ref, nil, append([]string{"--user", user}, sh...)...)
	}
}

// extractLayer returns the busybox image's one layer as a tar file.
func extractLayer(t *testing.T, archive, dir string) string {
	t.Helper()
	x := filepath.Join(dir, "busybox-oci")
	mustRun(t, "mkdir", "-p", x)
	mustRun(t, "tar", "-C", x, "-xf", archive)
	idx, _ := os.ReadFile(filepath.Join(x, "index.json"))
	manDigest := jq(t, idx, ".manifests[0].digest")
	man, _ := os.ReadFile(filepath.Join(x, "blobs", "sha256", strings.TrimPrefix(manDigest, "sha256:")))
	layer := jq(t, man, ".layers[0].digest")
	return filepath.Join(x, "blobs", "sha256", strings.TrimPrefix(layer, "sha256:"))
}

func jq(t *testing.T, data []byte, filter string) string {
	t.Helper()
	cmd := exec.Command("jq", "-r", filter)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq %s: %v", filter, err)
	}
	return strings.TrimSpace(string(out))
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
