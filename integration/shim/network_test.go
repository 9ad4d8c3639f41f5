package shim_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// TestOwnSandboxKeepsPodIP: a runc pod whose NET_ADMIN container (the
// service-mesh init container) ward routes to gVisor, in a sandbox of its
// own. runsc's default network mode moved the pod's address off the pod's
// interface into gVisor's network stack and never put it back, so the
// pod's runc containers lost their network, during and after. The pod's IP
// must stay on the pod's interface while the gVisor container runs and
// after it is gone, and a runc container of the pod must serve on it, to
// the pod itself, to the gVisor container and to another pod.
func TestOwnSandboxKeepsPodIP(t *testing.T) {
	w := startWard(t)
	pod := harness.Pod{Name: "own-sandbox-net", Handler: "ward"}
	p, err := w.RunSandbox(pod)
	if err != nil {
		t.Fatalf("pod sandbox: %v\n%s", err, w.LogTail(40))
	}
	ip, netns := podNetwork(t, w, p.SandboxID)
	onInterface := func(when string) {
		t.Helper()
		out, err := exec.Command("nsenter", "--net="+netns, "ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), " "+ip+"/") {
			t.Fatalf("%s: the pod's IP %s is not on its eth0 (%v):\n%s", when, ip, err, out)
		}
	}
	onInterface("before")

	// The init container: NET_ADMIN, so gVisor, in a sandbox of its own.
	initPod := pod
	initPod.AddCaps = []string{"NET_ADMIN"}
	gv, err := w.StartApp(p, initPod, 0)
	if err != nil {
		t.Fatalf("NET_ADMIN container: %v\n%s", err, w.LogTail(40))
	}
	if out, err := w.Exec(gv, "dmesg"); err != nil || !strings.Contains(out, "gVisor") {
		t.Fatalf("the NET_ADMIN container does not run on gVisor (%v):\n%s", err, out)
	}
	onInterface("while the gVisor container runs")
	// It shares the pod's address rather than holding a copy of its own.
	if out, err := w.Exec(gv, "ip", "-4", "addr"); err != nil || !strings.Contains(out, ip+"/") {
		t.Errorf("the gVisor container does not see the pod's IP %s (%v):\n%s", ip, err, out)
	}

	// A runc container of the same pod serves on the pod's IP: binding it
	// fails unless the address is on an interface of the namespace.
	appPod := pod
	appPod.Command = []string{"sh", "-c", "mkdir -p /tmp/www && echo hello-from-runc >/tmp/www/index.html && exec httpd -f -p " + ip + ":8080 -h /tmp/www"}
	app, err := w.StartApp(p, appPod, 1)
	if err != nil {
		t.Fatalf("runc container: %v\n%s", err, w.LogTail(40))
	}
	if out, _ := w.Exec(app, "dmesg"); strings.Contains(out, "gVisor") {
		t.Fatalf("the ordinary container runs on gVisor too:\n%s", out)
	}
	client, err := w.RunPod(harness.Pod{Name: "own-sandbox-net-client"})
	if err != nil {
		t.Fatalf("client pod: %v\n%s", err, w.LogTail(40))
	}
	fetch := func(when, from, id string) {
		t.Helper()
		var out string
		var err error
		// httpd may not be listening yet right after start.
		for i := 0; i < 25; i++ {
			// nc, not wget: Debian's static busybox wget segfaults here.
			if out, err = w.Exec(id, "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 `+ip+` 8080`); err == nil && strings.Contains(out, "hello-from-runc") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil || !strings.Contains(out, "hello-from-runc") {
			t.Errorf("%s: %s cannot reach the runc container on the pod's IP (%v): %q", when, from, err, out)
		}
	}
	fetch("while the gVisor container runs", "the runc container itself", app)
	fetch("while the gVisor container runs", "the gVisor container", gv)
	fetch("while the gVisor container runs", "another pod", client.ContainerID)

	// The init container is done: stopped, then removed.
	if _, stderr, err := w.Crictl("stop", gv); err != nil {
		t.Fatalf("stopping the gVisor container: %v: %s", err, stderr)
	}
	onInterface("after the gVisor container exited")
	if _, stderr, err := w.Crictl("rm", gv); err != nil {
		t.Fatalf("removing the gVisor container: %v: %s", err, stderr)
	}
	onInterface("after the gVisor container was removed")
	fetch("after the gVisor container", "the runc container itself", app)
	fetch("after the gVisor container", "another pod", client.ContainerID)

	for _, id := range []string{p.SandboxID, client.SandboxID} {
		if err := w.RemovePod(id); err != nil {
			t.Fatalf("removing pod: %v", err)
		}
	}
	p.ContainerID = gv
	if left := w.Leftovers(p, w.StateDir); len(left) > 0 {
		t.Errorf("pod left:\n%s", strings.Join(left, "\n"))
	}
	if m := harness.MountsUnder(w.StateDir); len(m) > 0 {
		t.Errorf("mounts left under the shim's state directory: %v", m)
	}
}

// podNetwork returns a pod's IP, as CRI reports it, and its network
// namespace's path.
func podNetwork(t *testing.T, w *ward, sandboxID string) (ip, netns string) {
	t.Helper()
	ip, _, err := w.Crictl("inspectp", "-o", "go-template", "--template", "{{.status.network.ip}}", sandboxID)
	if err != nil || ip == "" {
		t.Fatalf("pod IP: %q %v", ip, err)
	}
	netns, _, err = w.Crictl("inspectp", "-o", "go-template", "--template",
		`{{range .info.runtimeSpec.linux.namespaces}}{{if eq .type "network"}}{{.path}}{{end}}{{end}}`, sandboxID)
	if err != nil || netns == "" {
		t.Fatalf("pod network namespace: %q %v", netns, err)
	}
	return strings.TrimSpace(ip), strings.TrimSpace(netns)
}
