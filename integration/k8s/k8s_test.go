package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// probe prints what a container sees of its own confinement, then waits.
const probe = `grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; echo "uid_map: $(cat /proc/self/uid_map)"; echo "kernel: $(cat /proc/version)"; echo probed`

// podSpec is a pod of one busybox container running script.
func podSpec(runtimeClass, script string, sc map[string]any) map[string]any {
	ctr := map[string]any{"name": "main", "image": harness.BusyboxImage, "imagePullPolicy": "Never", "command": []string{"sh", "-c", script}}
	if sc != nil {
		ctr["securityContext"] = sc
	}
	spec := map[string]any{"dnsPolicy": "Default", "terminationGracePeriodSeconds": 1, "containers": []any{ctr}}
	if runtimeClass != "" {
		spec["runtimeClassName"] = runtimeClass
	}
	return spec
}

func deployment(name, ns string, spec map[string]any) map[string]any {
	labels := map[string]any{"app": name}
	return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"replicas": 1, "selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{"metadata": map[string]any{"labels": labels}, "spec": spec}}}
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// status parses "Key: value" lines.
func status(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// hostIdentity is the uid_map of a container without a user namespace.
const hostIdentity = "0 0 4294967295"

// checkHardened wants seccomp filtering, no_new_privs and a user namespace
// in a status/uid_map dump.
func checkHardened(t *testing.T, what, out string) {
	t.Helper()
	st := status(out)
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
		t.Errorf("%s: Seccomp=%q NoNewPrivs=%q, want 2 and 1:\n%s", what, st["Seccomp"], st["NoNewPrivs"], out)
	}
	if um := strings.Join(strings.Fields(st["uid_map"]), " "); um == "" || um == hostIdentity {
		t.Errorf("%s: uid_map %q: no user namespace", what, um)
	}
	if strings.Contains(st["kernel"], "gVisor") {
		t.Errorf("%s: runs on gVisor, want hardened runc", what)
	}
}

// waitRollout waits for a Deployment's pods to be up.
func (c *Cluster) waitRollout(t *testing.T, ns, name string) {
	t.Helper()
	if out, err := c.TryKubectl("-n", ns, "rollout", "status", "deployment/"+name, "--timeout", "120s"); err != nil {
		desc, _ := c.TryKubectl("-n", ns, "describe", "pods", "-l", "app="+name)
		t.Fatalf("%v\n%s\n%s\n%s", err, out, desc, c.Containerd.LogTail(20))
	}
}

// logsUntil waits for want in a Deployment's logs.
func (c *Cluster) logsUntil(t *testing.T, ns, name, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := c.TryKubectl("-n", ns, "logs", "deployment/"+name)
		if err == nil && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s/%s never showed %q: %v\n%s", ns, name, want, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (c *Cluster) exec(t *testing.T, ns, name string, cmd ...string) string {
	t.Helper()
	out, err := c.TryKubectl(append([]string{"-n", ns, "exec", "deployment/" + name, "--"}, cmd...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// checkGVisor wants the Deployment's pod on gVisor's kernel, seen from
// inside (its /proc/version and dmesg come from runsc).
func (c *Cluster) checkGVisor(t *testing.T, ns, name string) {
	t.Helper()
	out := c.logsUntil(t, ns, name, "probed")
	if !strings.Contains(status(out)["kernel"], "gVisor") {
		dmesg, _ := c.TryKubectl("-n", ns, "exec", "deployment/"+name, "--", "dmesg")
		if !strings.Contains(dmesg, "gVisor") {
			t.Errorf("%s/%s is not on gVisor:\n%s\ndmesg:\n%s", ns, name, out, dmesg)
		}
	}
	if dmesg := c.exec(t, ns, name, "dmesg"); !strings.Contains(dmesg, "gVisor") {
		t.Errorf("%s/%s: dmesg does not show gVisor's kernel:\n%s", ns, name, dmesg)
	}
}

// rejected waits for the kubelet's event carrying ward's rejection of a
// Deployment's pod and returns what `kubectl describe pod` and `kubectl
// get pods` show.
func (c *Cluster) rejected(t *testing.T, ns, name string) (describe, get string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		describe, _ = c.TryKubectl("-n", ns, "describe", "pods", "-l", "app="+name)
		if strings.Contains(describe, "ward rejected") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rejection by ward in the events of %s/%s:\n%s", ns, name, describe)
		}
		time.Sleep(time.Second)
	}
	get, _ = c.TryKubectl("-n", ns, "get", "pods", "-l", "app="+name, "-o", "wide")
	return describe, get
}

func TestKubernetes(t *testing.T) {
	begin := time.Now()
	c := Start(t, Options{Ward: true})
	t.Logf("cluster up in %.1fs (%s)", time.Since(begin).Seconds(), strings.Join(c.Timings, ", "))
	const ns = "default"

	// The CronJob first: it runs at the next minute boundary while the
	// rest goes on.
	c.Apply(t, js(map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "tick", "namespace": ns},
		"spec": map[string]any{"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": map[string]any{"spec": map[string]any{
			"backoffLimit": 0, "template": map[string]any{"spec": withRestart(podSpec("ward", probe, nil), "Never")}}}}}))

	t.Run("ordinary", func(t *testing.T) {
		c.Apply(t, js(deployment("ordinary", ns, podSpec("ward", probe+"; exec sleep 100000", nil))))
		c.waitRollout(t, ns, "ordinary")
		// kubectl logs: the main process's own view.
		checkHardened(t, "main process (kubectl logs)", c.logsUntil(t, ns, "ordinary", "probed"))
		// kubectl exec: a new process in the container, judged by ward's
		// exec path.
		checkHardened(t, "kubectl exec", c.exec(t, ns, "ordinary", "sh", "-c", probe))
	})

	t.Run("rollout-restart", func(t *testing.T) {
		before := c.Kubectl("-n", ns, "get", "pods", "-l", "app=ordinary", "-o", "jsonpath={.items[*].metadata.name}")
		c.Kubectl("-n", ns, "rollout", "restart", "deployment/ordinary")
		c.waitRollout(t, ns, "ordinary")
		after := c.Kubectl("-n", ns, "get", "pods", "-l", "app=ordinary", "--field-selector", "status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
		if after == "" || strings.Contains(before, after) {
			t.Fatalf("pods before the restart %q, after %q", before, after)
		}
		checkHardened(t, "after a rollout restart", c.exec(t, ns, "ordinary", "sh", "-c", probe))
	})

	t.Run("sys-admin", func(t *testing.T) {
		c.Apply(t, js(deployment("sys-admin", ns, podSpec("ward", probe+"; exec sleep 100000",
			map[string]any{"capabilities": map[string]any{"add": []string{"SYS_ADMIN"}}}))))
		c.waitRollout(t, ns, "sys-admin")
		c.checkGVisor(t, ns, "sys-admin")
	})

	t.Run("untrusted-namespace", func(t *testing.T) {
		const untrusted = "ward-untrusted-ci"
		c.Kubectl("create", "namespace", untrusted)
		waitServiceAccount(t, c, untrusted)
		c.Apply(t, js(deployment("ordinary", untrusted, podSpec("ward", probe+"; exec sleep 100000", nil))))
		c.waitRollout(t, untrusted, "ordinary")
		c.checkGVisor(t, untrusted, "ordinary")
	})

	for _, tc := range []struct {
		name, finding string
		spec          map[string]any
	}{
		{"privileged", "privileged", podSpec("ward", "sleep 100000", map[string]any{"privileged": true})},
		{"host-pid", "host-pid", withHostPID(podSpec("ward", "sleep 100000", nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Apply(t, js(deployment(tc.name, ns, tc.spec)))
			describe, get := c.rejected(t, ns, tc.name)
			t.Logf("kubectl describe pod (%s):\n%s", tc.name, describe)
			t.Logf("kubectl get pods (%s):\n%s", tc.name, get)
			if !regexp.MustCompile(`findings \[[^\]]*\b` + tc.finding + `\b`).MatchString(describe) {
				t.Errorf("the event does not name the finding %s", tc.finding)
			}
			for _, want := range []string{"reject-host-takeover", "ward explain"} {
				if !strings.Contains(describe, want) {
					t.Errorf("the event does not say %q", want)
				}
			}
			if strings.Contains(get, "Running") {
				t.Errorf("a rejected pod runs:\n%s", get)
			}
		})
	}

	t.Run("volumes", func(t *testing.T) { testVolumes(t, c, ns) })

	t.Run("job", func(t *testing.T) {
		c.Apply(t, js(map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "once", "namespace": ns},
			"spec": map[string]any{"backoffLimit": 0, "template": map[string]any{"spec": withRestart(podSpec("ward", probe, nil), "Never")}}}))
		if out, err := c.TryKubectl("-n", ns, "wait", "--for=condition=complete", "job/once", "--timeout=120s"); err != nil {
			desc, _ := c.TryKubectl("-n", ns, "describe", "job/once")
			t.Fatalf("%v\n%s\n%s", err, out, desc)
		}
		checkHardened(t, "job", c.Kubectl("-n", ns, "logs", "job/once"))
	})

	t.Run("cronjob", func(t *testing.T) {
		deadline := time.Now().Add(150 * time.Second)
		for {
			last := c.Kubectl("-n", ns, "get", "cronjob/tick", "-o", "jsonpath={.status.lastSuccessfulTime}")
			if last != "" {
				break
			}
			if time.Now().After(deadline) {
				desc, _ := c.TryKubectl("-n", ns, "describe", "cronjob/tick")
				jobs, _ := c.TryKubectl("-n", ns, "get", "jobs,pods")
				t.Fatalf("the CronJob never completed a run:\n%s\n%s", desc, jobs)
			}
			time.Sleep(2 * time.Second)
		}
		// The CronJob's Jobs are named after it.
		for _, job := range strings.Fields(c.Kubectl("-n", ns, "get", "jobs", "-o", "jsonpath={.items[*].metadata.name}")) {
			if strings.HasPrefix(job, "tick-") {
				checkHardened(t, "cronjob", c.Kubectl("-n", ns, "logs", "job/"+job))
				return
			}
		}
		t.Error("no Job of the CronJob left to read")
	})

	t.Run("admission", func(t *testing.T) { testAdmission(t, c, ns) })
}

func withRestart(spec map[string]any, policy string) map[string]any {
	spec["restartPolicy"] = policy
	return spec
}

func withHostPID(spec map[string]any) map[string]any {
	spec["hostPID"] = true
	return spec
}

func waitServiceAccount(t *testing.T, c *Cluster, ns string) {
	t.Helper()
	for i := 0; i < 120; i++ {
		if out, _ := c.TryKubectl("-n", ns, "get", "serviceaccount", "default", "-o", "name"); out != "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("namespace %s has no default service account", ns)
}

// volumeScript reads and writes every kind of volume and prints what it
// saw; its output on ward must equal its output on runc.
const volumeScript = `set -u
for f in /cfg/key /sec/key; do echo "$f: $(cat $f)"; done
tok=/var/run/secrets/kubernetes.io/serviceaccount
echo "token: $(test -s $tok/token && echo readable) ca: $(grep -c BEGIN $tok/ca.crt) ns: $(cat $tok/namespace)"
for d in /scratch /host; do
	echo written >$d/out.$NAME && echo "$d: $(cat $d/out.$NAME) $(stat -c '%u:%g %a' $d/out.$NAME)"
	mkdir -p $d/sub.$NAME && touch $d/sub.$NAME/f && echo "$d/sub: $(ls $d/sub.$NAME)"
done
echo "cfg writable: $(touch /cfg/x 2>/dev/null && echo yes || echo no)"
echo volumes-done; exec sleep 100000`

func testVolumes(t *testing.T, c *Cluster, ns string) {
	// A hostPath below the directory the operator gives to workloads
	// (node.workloadDirs): writable by container root as on runc.
	hostDir := filepath.Join(c.WorkloadDir(), "vol")
	c.Apply(t, js(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "vol-cfg", "namespace": ns}, "data": map[string]any{"key": "from-configmap"}}))
	c.Apply(t, js(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "vol-sec", "namespace": ns}, "stringData": map[string]any{"key": "from-secret"}}))
	outs := map[string]string{}
	for _, rc := range []string{"", "ward"} {
		name := "vol-" + map[string]string{"": "runc", "ward": "ward"}[rc]
		spec := podSpec(rc, volumeScript, nil)
		ctr := spec["containers"].([]any)[0].(map[string]any)
		ctr["env"] = []any{map[string]any{"name": "NAME", "value": name}}
		ctr["volumeMounts"] = []any{
			map[string]any{"name": "scratch", "mountPath": "/scratch"},
			map[string]any{"name": "cfg", "mountPath": "/cfg"},
			map[string]any{"name": "sec", "mountPath": "/sec"},
			map[string]any{"name": "host", "mountPath": "/host"},
		}
		spec["volumes"] = []any{
			map[string]any{"name": "scratch", "emptyDir": map[string]any{}},
			map[string]any{"name": "cfg", "configMap": map[string]any{"name": "vol-cfg"}},
			map[string]any{"name": "sec", "secret": map[string]any{"secretName": "vol-sec"}},
			map[string]any{"name": "host", "hostPath": map[string]any{"path": hostDir, "type": "DirectoryOrCreate"}},
		}
		c.Apply(t, js(deployment(name, ns, spec)))
		c.waitRollout(t, ns, name)
		out := c.logsUntil(t, ns, name, "volumes-done")
		outs[rc] = strings.ReplaceAll(out, name, "NAME")
		t.Logf("%s:\n%s", name, out)
		// What the host sees of the file the pod wrote.
		if fi, err := os.Stat(filepath.Join(hostDir, "out."+name)); err != nil {
			t.Errorf("%s: the hostPath write is not on the host: %v", name, err)
		} else {
			outs[rc] += fmt.Sprintf("host sees: %v %s\n", fi.Mode(), ownerOf(fi))
		}
	}
	if outs[""] != outs["ward"] {
		t.Errorf("volumes differ between runc and ward:\nrunc:\n%s\nward:\n%s", outs[""], outs["ward"])
	}
}
