package workloads_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ward-runtime/ward/integration/harness"
)

// startPodman runs Debian's Podman with every path of its own (storage, run
// root, temp, configuration) under a private directory, with runtime as
// its OCI runtime for every command, `podman build` included, and imports
// the corpus image. Podman hands conmon a cleaned environment and calls the
// runtime's delete without its --runtime-flag options, so ward's
// configuration travels in a wrapper script that is the runtime.
func startPodman(t *testing.T, runtime, tarball string) *cliDoor {
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("podman not installed: run `make deps`: %v", err)
	}
	dir := privateDir(t, "ward-wl-podman-"+runtime+".")
	d := &cliDoor{door_: "podman", runtime_: runtime, dir: dir}
	storage, run := filepath.Join(dir, "storage"), filepath.Join(dir, "run")
	for _, sub := range []string{storage, run, filepath.Join(dir, "tmp"), filepath.Join(dir, "networks")} {
		if err := os.MkdirAll(sub, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	if runtime == "ward" {
		pol := wardPolicy(t, dir, map[string][]string{
			"runtimeDirs":  {storage + "/overlay-containers", run + "/overlay-containers"},
			"volumeDirs":   {storage + "/volumes"},
			"rootfsDirs":   {storage + "/overlay"},
			"workloadDirs": {filepath.Join(dir, "host", workloadDir)},
		}, "")
		var cfg string
		cfg, d.decided = wardConfig(t, dir, pol)
		rt = filepath.Join(dir, "ward-runtime")
		script := "#!/bin/sh\nexec " + harness.WardBin(t, "ward-runtime") + " --ward-config=" + cfg + " \"$@\"\n"
		if err := os.WriteFile(rt, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "containers.conf")
	// The runtime is named in containers.conf, not only by --runtime, so
	// that `podman build`'s RUN steps (buildah) use it too.
	body := "[network]\nnetwork_config_dir = \"" + filepath.Join(dir, "networks") + "\"\n" +
		"[engine]\nruntime = \"wl\"\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n[engine.runtimes]\nwl = [\"" + rt + "\"]\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d.env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	d.argv = []string{bin,
		"--root", storage, "--runroot", run, "--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", rt,
	}
	// This machine has no network, and its root lacks CAP_SYS_RESOURCE:
	// Podman's default open-files limit is above what runc can set here.
	d.runFlags = []string{"--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	// Podman's cgroupfs manager puts conmon and containers under
	// libpod_parent: remove it afterwards unless it was there before.
	tops, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent")
	hadParent := len(tops) > 0
	t.Cleanup(func() {
		d.cli("rm", "--all", "--force", "--time", "0")
		d.cli("system", "reset", "--force")
		for _, m := range harness.MountsUnder(dir) {
			exec.Command("umount", "-l", m).Run()
		}
		if !hadParent {
			harness.RemoveCgroups("libpod_parent")
		}
	})
	if r := d.cli("import", tarball, image); r.Code != 0 {
		t.Fatalf("podman import: %s", r.Stderr)
	}
	return d
}
