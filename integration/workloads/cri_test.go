package workloads_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// criDoor is containerd's CRI as a kubelet drives it (crictl with a
// kubelet's requests: a pod per workload, restarts as new attempts,
// emptyDir and hostPath volumes), with one runtime handler: containerd's
// runc shim ("runc") or ward's shim over the same runc ("ward"). Both
// handlers are on one private containerd.
type criDoor struct {
	c        *harness.Containerd
	handler  string
	decided  string
	n        int
	running  map[string]*criCtr // by ctr.name
	volumes  map[string]*criCtr // a pod per named volume: its containers share it as an emptyDir
	sandboxs []string
}

// criCtr is a started pod and its app container.
type criCtr struct {
	pod     harness.RunningPod
	spec    harness.Pod
	user    string // ctr.user
	attempt int
}

func (d *criDoor) doorName() string    { return "cri" }
func (d *criDoor) runtime() string     { return d.handler }
func (d *criDoor) decisionLog() string { return d.decided }

// startCRI starts a private containerd with ward's shim as the "ward"
// handler (ward's default policy, the instance's kubelet and containerd
// directories where a node's are) beside containerd's runc handler, imports
// the corpus image, and returns a door for each.
func startCRI(t *testing.T, tarball string) (runc, ward *criDoor) {
	harness.Require(t)
	dir := harness.NewDir(t)
	pol := wardPolicy(t, dir, map[string][]string{
		"runtimeDirs":  {filepath.Join(dir, "root/io.containerd.grpc.v1.cri/sandboxes"), filepath.Join(dir, "state/io.containerd.grpc.v1.cri/sandboxes")},
		"rootfsDirs":   {filepath.Join(dir, "state/io.containerd.runtime.v2.task")},
		"workloadDirs": {filepath.Join(dir, "host-ward", workloadDir)},
	}, filepath.Join(dir, "kubelet"))
	cfg, decided := wardConfig(t, dir, pol)
	rc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	c := harness.StartContainerd(t, harness.Config{
		Dir: dir,
		Env: []string{"WARD_CONFIG=" + cfg},
		Runtimes: []harness.Runtime{{
			Name: "ward", Path: harness.WardBin(t, "containerd-shim-ward-v2"),
			Options: map[string]any{"BinaryName": rc, "Root": filepath.Join(dir, "runc-ward"), "SystemdCgroup": false},
		}},
	})
	archive := filepath.Join(dir, "images", "workloads.tar")
	if err := writeOCIArchive(archive, tarball, image); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := harness.Command(10*time.Minute, os.Environ(), "ctr", "--address", c.Socket, "-n", harness.K8sNamespace, "images", "import", archive); code != 0 {
		t.Fatalf("ctr images import: %s", stderr)
	}
	os.Remove(archive)
	for i := 0; ; i++ {
		if _, _, err := c.Crictl("inspecti", image); err == nil {
			break
		}
		if i == 100 {
			t.Fatal("CRI does not see the corpus image")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mk := func(h, log string) *criDoor {
		return &criDoor{c: c, handler: h, decided: log, running: map[string]*criCtr{}, volumes: map[string]*criCtr{}}
	}
	return mk("runc", ""), mk("ward", decided)
}

// emptyDir is a pod's emptyDir volume as a kubelet makes it (0777, under
// its pods directory).
func (d *criDoor) emptyDir(pod harness.RunningPod, name string) (string, error) {
	p := filepath.Join(d.c.Dir, "kubelet", "pods", pod.UID, "volumes", "kubernetes.io~empty-dir", name)
	if err := os.MkdirAll(p, 0o777); err != nil {
		return "", err
	}
	return p, os.Chmod(p, 0o777)
}

// pod makes the kubelet's requests for c: a new pod, or the pod of c's
// named volume (its containers share the volume as an emptyDir), with
// c's volumes, user, working directory and read-only root.
func (d *criDoor) pod(c ctr) (*criCtr, error) {
	d.n++
	p := harness.Pod{Name: fmt.Sprintf("wl-%s-%d", d.handler, d.n), Handler: d.handler, Image: image, Command: c.cmd,
		WorkingDir: c.workdir, ReadOnlyRootfs: c.readOnly}
	if c.user != "" {
		u, g, _ := strings.Cut(c.user, ":")
		if n, err := strconv.ParseInt(u, 10, 64); err == nil {
			p.RunAsUser = &n
			if gn, err := strconv.ParseInt(g, 10, 64); err == nil {
				p.RunAsGroup = &gn
			}
		} else {
			p.RunAsUsername = u
		}
	}
	var sandbox *criCtr
	for _, m := range c.mounts {
		if m.volume != "" {
			sandbox = d.volumes[m.volume]
		}
	}
	if sandbox == nil {
		rp, err := d.c.RunSandbox(p)
		if err != nil {
			return nil, err
		}
		d.sandboxs = append(d.sandboxs, rp.SandboxID)
		sandbox = &criCtr{pod: rp}
		for _, m := range c.mounts {
			if m.volume != "" {
				d.volumes[m.volume] = sandbox
			}
		}
	} else {
		// A later container of the volume's pod: the pod's name and
		// sandbox, the next attempt's files.
		p.Name = sandbox.spec.Name
	}
	cc := &criCtr{pod: sandbox.pod, spec: p, user: c.user, attempt: sandbox.attempt}
	sandbox.attempt++
	sandbox.spec = p
	for _, m := range c.mounts {
		src := m.host
		if m.volume != "" {
			var err error
			if src, err = d.emptyDir(cc.pod, m.volume); err != nil {
				return nil, err
			}
		}
		cc.spec.Mounts = append(cc.spec.Mounts, harness.Mount{Host: src, Container: m.target})
	}
	if c.readOnly {
		tmp, err := d.emptyDir(cc.pod, "tmp")
		if err != nil {
			return nil, err
		}
		cc.spec.Mounts = append(cc.spec.Mounts, harness.Mount{Host: tmp, Container: "/tmp"})
	}
	id, err := d.c.StartApp(cc.pod, cc.spec, cc.attempt)
	cc.pod.ContainerID = id
	return cc, err
}

func (d *criDoor) state(id string) (state string, exit int, err error) {
	out, _, err := d.c.Crictl("inspect", "-o", "go-template", "--template", "{{.status.state}} {{.status.exitCode}}", id)
	if err != nil {
		return "", 0, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return "", 0, fmt.Errorf("crictl inspect: %q", out)
	}
	exit, err = strconv.Atoi(f[1])
	return f[0], exit, err
}

func (d *criDoor) run(c ctr) error {
	cc, err := d.pod(c)
	if err != nil {
		return err
	}
	return d.waitExit(cc.pod.ContainerID)
}

func (d *criDoor) wait(name string) error {
	cc, ok := d.running[name]
	if !ok {
		return fmt.Errorf("no container %s", name)
	}
	return d.waitExit(cc.pod.ContainerID)
}

func (d *criDoor) waitExit(id string) error {
	for deadline := time.Now().Add(cliTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		state, exit, err := d.state(id)
		if err != nil {
			return err
		}
		if state == "CONTAINER_EXITED" {
			if exit != 0 {
				logs, _, _ := d.c.Crictl("logs", id)
				return fmt.Errorf("exit %d: %s", exit, lastLine(logs))
			}
			return nil
		}
	}
	return fmt.Errorf("container %s still running after %v", id, cliTimeout)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

func (d *criDoor) start(c ctr) error {
	cc, err := d.pod(c)
	if err != nil {
		return err
	}
	d.running[c.name] = cc
	return nil
}

// exec is `crictl exec`; CRI's exec has no user, so another user is
// reached as `kubectl exec` users do, with setpriv (util-linux) inside.
func (d *criDoor) exec(name, user string, cmd ...string) harness.DockerResult {
	cc, ok := d.running[name]
	if !ok {
		return harness.DockerResult{Stderr: "no container " + name, Code: -1}
	}
	// An exec session runs as the container's user: another user is a
	// setpriv away, the container's own needs none (and could not use it).
	if user != "" && user != cc.user {
		u, g, found := strings.Cut(user, ":")
		if !found {
			g = u
		}
		cmd = append([]string{"setpriv", "--reuid=" + u, "--regid=" + g, "--clear-groups"}, cmd...)
	}
	argv := append([]string{"crictl", "--config", filepath.Join(d.c.Dir, "crictl.yaml"), "exec", "--timeout", "60", cc.pod.ContainerID}, cmd...)
	o, e, code := harness.Command(cliTimeout, os.Environ(), argv...)
	return harness.DockerResult{Stdout: o, Stderr: e, Code: code}
}

func (d *criDoor) logs(name string) (string, error) {
	cc, ok := d.running[name]
	if !ok {
		return "", fmt.Errorf("no container %s", name)
	}
	out, errOut, err := d.c.Crictl("logs", cc.pod.ContainerID)
	return out + errOut, err
}

// restart is a kubelet's: stop the container, start a new attempt of it
// in the same pod.
func (d *criDoor) restart(name string) error {
	cc, ok := d.running[name]
	if !ok {
		return fmt.Errorf("no container %s", name)
	}
	if _, _, err := d.c.Crictl("stop", "--timeout", "1", cc.pod.ContainerID); err != nil {
		return err
	}
	cc.attempt++
	id, err := d.c.StartApp(cc.pod, cc.spec, cc.attempt)
	cc.pod.ContainerID = id
	return err
}

// A kubelet never starts a stopped container again, commits, builds or
// copies into one (kubectl cp is an exec of tar).
func (d *criDoor) stopStart(string) error             { return errNotHere }
func (d *criDoor) commit(string, string) error        { return errNotHere }
func (d *criDoor) build(string, string) error         { return errNotHere }
func (d *criDoor) cpIn(string, string, string) error  { return errNotHere }
func (d *criDoor) cpOut(string, string, string) error { return errNotHere }
func (d *criDoor) layerOwners(string, map[string]string) (map[string]string, error) {
	return nil, errNotHere
}

func (d *criDoor) hostDir(name string) (string, error) {
	p := filepath.Join(d.c.Dir, "host-"+d.handler, name)
	return p, os.MkdirAll(p, 0o755)
}

func (d *criDoor) removeAll() {
	for _, id := range d.sandboxs {
		d.c.RemovePod(id)
	}
	d.sandboxs = nil
	d.running = map[string]*criCtr{}
	d.volumes = map[string]*criCtr{}
}
