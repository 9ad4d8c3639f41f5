package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pod describes a kubelet-like pod with one app container, sent to CRI as
// crictl's JSON (CRI message field names; enums as numbers).
type Pod struct {
	// Name is the pod and its directory's name; unique per test.
	Name string
	// Handler is the runtime handler (crictl runp --runtime).
	Handler string
	// Command of the app container; default sleep 3600.
	Command []string
	// Privileged marks the pod and the container privileged.
	Privileged bool
	// AddCaps are added to the app container (e.g. "SYS_ADMIN").
	AddCaps []string
	// Annotations are pod annotations.
	Annotations map[string]string
	// RuntimeDefault asks for the runtime's default seccomp profile instead
	// of kubelet's default, Unconfined.
	RuntimeDefault bool
	// HostPID and HostNetwork put the pod in the node's PID or network
	// namespace (hostPID: true, hostNetwork: true).
	HostPID, HostNetwork bool
	// RunAsUser, when set, is the app container's runAsUser.
	RunAsUser *int64
	// Mounts are the app container's hostPath volumes.
	Mounts []Mount
	// Env is the app container's environment.
	Env map[string]string
	// Image is the app container's image; default BusyboxImage.
	Image string
	// RunAsUsername is the app container's user by name (a kubelet sends
	// it for an image's USER that is not numeric); RunAsGroup its group.
	RunAsUsername string
	RunAsGroup    *int64
	// WorkingDir and ReadOnlyRootfs are the container's.
	WorkingDir     string
	ReadOnlyRootfs bool
}

// Mount is a hostPath volume of the app container.
type Mount struct {
	Host, Container string
	ReadOnly        bool
}

// namespaces is CRI's NamespaceOption: POD (0) or NODE (2) for the
// network, CONTAINER (1) or NODE for PIDs, as a kubelet sends them.
func (p Pod) namespaces() map[string]any {
	network, pid := 0, 1
	if p.HostNetwork {
		network = 2
	}
	if p.HostPID {
		pid = 2
	}
	return map[string]any{"network": network, "pid": pid, "ipc": 0}
}

func (p Pod) seccomp() map[string]any {
	if p.RuntimeDefault {
		return map[string]any{"profile_type": 0}
	}
	return map[string]any{"profile_type": 1}
}

// RunningPod is a started pod.
type RunningPod struct {
	UID         string
	SandboxID   string
	ContainerID string
}

// podConfig is what a kubelet sends for a BestEffort pod with kubelet's
// defaults: seccomp Unconfined, pod-level PID namespace.
func (c *Containerd) podConfig(p Pod, uid string) map[string]any {
	sc := map[string]any{
		"namespace_options": p.namespaces(),
		"seccomp":           p.seccomp(),
		"privileged":        p.Privileged,
	}
	ann := map[string]string{"kubernetes.io/config.source": "api"}
	for k, v := range p.Annotations {
		ann[k] = v
	}
	cfg := map[string]any{
		"metadata":      map[string]any{"name": p.Name, "namespace": "ward-it", "uid": uid, "attempt": 0},
		"hostname":      p.Name,
		"log_directory": filepath.Join(c.Dir, "log/pods", p.Name),
		"labels":        map[string]string{"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": "ward-it", "io.kubernetes.pod.uid": uid},
		"annotations":   ann,
		"linux": map[string]any{
			"cgroup_parent":    "/kubepods/besteffort/pod" + uid,
			"security_context": sc,
		},
	}
	// A kubelet names no hostname for a host-network pod: it shares the
	// node's UTS namespace, where runc refuses to set one.
	if p.HostNetwork {
		delete(cfg, "hostname")
	}
	return cfg
}

func (c *Containerd) containerConfig(p Pod, attempt int) map[string]any {
	cmd := p.Command
	if cmd == nil {
		cmd = []string{"sleep", "3600"}
	}
	sc := map[string]any{
		"namespace_options": p.namespaces(),
		"seccomp":           p.seccomp(),
		"privileged":        p.Privileged,
		"masked_paths": []string{"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
			"/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"},
		"readonly_paths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
	}
	if p.Privileged {
		delete(sc, "masked_paths")
		delete(sc, "readonly_paths")
	}
	if len(p.AddCaps) > 0 {
		sc["capabilities"] = map[string]any{"add_capabilities": p.AddCaps}
	}
	if p.RunAsUser != nil {
		sc["run_as_user"] = map[string]any{"value": *p.RunAsUser}
	}
	if p.RunAsGroup != nil {
		sc["run_as_group"] = map[string]any{"value": *p.RunAsGroup}
	}
	if p.RunAsUsername != "" {
		sc["run_as_username"] = p.RunAsUsername
	}
	if p.ReadOnlyRootfs {
		sc["readonly_rootfs"] = true
	}
	img := p.Image
	if img == "" {
		img = BusyboxImage
	}
	mounts := []map[string]any{}
	for _, m := range p.Mounts {
		mounts = append(mounts, map[string]any{"host_path": m.Host, "container_path": m.Container, "readonly": m.ReadOnly})
	}
	envs := []map[string]string{}
	for k, v := range p.Env {
		envs = append(envs, map[string]string{"key": k, "value": v})
	}
	return map[string]any{
		"metadata":    map[string]any{"name": "app", "attempt": attempt},
		"image":       map[string]any{"image": img},
		"command":     cmd,
		"envs":        envs,
		"mounts":      mounts,
		"working_dir": p.WorkingDir,
		"log_path":    fmt.Sprintf("app/%d.log", attempt),
		"labels":      map[string]string{"io.kubernetes.container.name": "app"},
		"linux": map[string]any{
			"resources":        map[string]any{"cpu_shares": 2, "oom_score_adj": 1000},
			"security_context": sc,
		},
	}
}

func (c *Containerd) writeJSON(name string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(c.Dir, "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, data, 0o644)
}

// RunPod starts the pod's sandbox (runp), then creates and starts its app
// container. On error the returned pod holds what did start; stopping and
// removing it is up to the caller or Cleanup.
func (c *Containerd) RunPod(p Pod) (RunningPod, error) {
	rp, err := c.RunSandbox(p)
	if err != nil {
		return rp, err
	}
	rp.ContainerID, err = c.StartApp(rp, p, 0)
	return rp, err
}

// RunSandbox starts only the pod's sandbox (runp); StartApp adds app
// containers to it.
func (c *Containerd) RunSandbox(p Pod) (RunningPod, error) {
	uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, time.Now().UnixNano()&0xffffffffffff)
	rp := RunningPod{UID: uid}
	c.podUIDs = append(c.podUIDs, uid)
	podPath, err := c.writeJSON(p.Name+"-pod.json", c.podConfig(p, uid))
	if err != nil {
		return rp, err
	}
	args := []string{"runp"}
	if p.Handler != "" {
		args = append(args, "--runtime", p.Handler)
	}
	id, _, err := c.Crictl(append(args, podPath)...)
	if err != nil {
		return rp, err
	}
	rp.SandboxID = id
	c.notePodNetns(id)
	return rp, nil
}

// StartApp creates and starts p's app container in the sandbox RunSandbox
// started for p, as the attempt-th start of that container (a kubelet's
// restart is a new attempt), and returns its ID.
func (c *Containerd) StartApp(rp RunningPod, p Pod, attempt int) (string, error) {
	ctrPath, err := c.writeJSON(fmt.Sprintf("%s-container-%d.json", p.Name, attempt), c.containerConfig(p, attempt))
	if err != nil {
		return "", err
	}
	cid, _, err := c.Crictl("create", rp.SandboxID, ctrPath, filepath.Join(c.Dir, "pods", p.Name+"-pod.json"))
	if err != nil {
		return "", err
	}
	if _, _, err := c.Crictl("start", cid); err != nil {
		return cid, err
	}
	return cid, nil
}

// Exec runs a command in a container and returns its output.
func (c *Containerd) Exec(id string, cmd ...string) (string, error) {
	out, _, err := c.Crictl(append([]string{"exec", "--timeout", "30", id}, cmd...)...)
	return out, err
}

// RemovePod stops and removes a pod.
func (c *Containerd) RemovePod(sandboxID string) error {
	if _, _, err := c.Crictl("stopp", sandboxID); err != nil {
		return err
	}
	_, _, err := c.Crictl("rmp", sandboxID)
	return err
}

// Leftovers lists what a removed pod left on the host: mounts mentioning
// its ids, container cgroups below its pod cgroup, runtime state directories, and files under
// extra directories (e.g. ward's state) that mention the ids.
func (c *Containerd) Leftovers(rp RunningPod, stateDirs ...string) []string {
	var out []string
	ids := []string{rp.SandboxID}
	if rp.ContainerID != "" {
		ids = append(ids, rp.ContainerID)
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		for _, id := range ids {
			if id != "" && strings.Contains(line, id) {
				out = append(out, "mount: "+line)
			}
		}
	}
	// The pod's own parent cgroup is the kubelet's to remove (runc removes
	// only its containers' leaves), so only what is below it counts.
	hs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods/besteffort/pod" + rp.UID + "/*")
	for _, h := range hs {
		if fi, err := os.Stat(h); err == nil && fi.IsDir() {
			out = append(out, "cgroup: "+h)
		}
	}
	dirs := append([]string{c.RuncDir, c.State}, stateDirs...)
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			for _, id := range ids {
				if id != "" && strings.Contains(e.Name(), id) {
					out = append(out, "state: "+p)
					if e.IsDir() {
						return filepath.SkipDir
					}
				}
			}
			return nil
		})
	}
	// A shim exits after it answered Shutdown (closing its supervisor and
	// sensor first): give processes a moment to finish exiting.
	left := processesOf(ProcessesUnder(c.Dir), ids)
	for wait := 0; wait < 50 && len(left) > 0; wait++ {
		time.Sleep(100 * time.Millisecond)
		left = processesOf(ProcessesUnder(c.Dir), ids)
	}
	return append(out, left...)
}

// processesOf describes the processes among pids whose command line names
// one of ids.
func processesOf(pids []int, ids []string) []string {
	var out []string
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		for _, id := range ids {
			if strings.Contains(string(cmdline), id) {
				out = append(out, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
			}
		}
	}
	return out
}
