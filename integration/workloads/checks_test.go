package workloads_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// check is one everyday operation, written once for every door and run
// the same way under each runtime.
type check struct {
	name string
	what string
	run  func(d door) error
}

// deliberate lists the checks ward fails on purpose or because another
// issue owns the fix, with the reason docs/defaults.md gives.
var deliberate = map[string]string{
	"volume/bind-root-writes":    "host directories stay unmapped under ward's user namespace (as with Kubernetes hostUsers: false): container root is an unprivileged host ID there, unless the operator gives the directory to workloads (node.workloadDirs, check volume/bind-workload-dir)",
	"git/bind-workspace":         "same cause as volume/bind-root-writes: the workspace is owned by an ID container root does not map (node.workloadDirs idmaps it: volume/bind-workload-dir)",
	"image/cp-into-running-seen": "Docker only, blocked by the kernel: docker cp writes through the manager's own overlay of the writable layer, and ward's (the container's) caches a name the container looked up before as missing; overlayfs does not revalidate the dentries of a local upper layer and gives userspace no way to drop one, and the one-instance design (the container on an idmapped mount of the manager's overlay) needs idmapped mounts of an overlayfs mount, which overlayfs refuses (no FS_ALLOW_IDMAP; EINVAL on 6.18). A name not looked up before is seen (image/cp-into-running); Podman's cp writes through ward's overlay and passes (docs/userns.md)",
}

// workloadDir is the directory below each door's host directories that
// its ward policy lists in node.workloadDirs, as an operator would a CI
// node's workspaces.
const workloadDir = "workload"

// open lists the checks ward still fails that are not deliberate: the
// test reports them and does not fail on them, and each names what is
// missing (docs/userns.md, docs/defaults.md). A check leaves this list
// when the fix lands.
var open = map[string]string{}

// wantAlerts lists the checks that must raise alerts under ward, by rule
// ID; every other check is benign and must raise none (issue 16).
var wantAlerts = map[string][]string{
	"drift/dropped-binary": {"drift"},
}

// The Python one-liners the service checks run inside the image.
const (
	httpGet = `import urllib.request,sys; sys.exit(0 if urllib.request.urlopen("http://127.0.0.1/").status==200 else 1)`
	// hupServer writes /tmp/hup on SIGHUP and answers "pong" on the
	// abstract socket @ward-wl.
	hupServer = `import signal,socket,os
signal.signal(signal.SIGHUP, lambda *a: open("/tmp/hup","w").close())
s=socket.socket(socket.AF_UNIX); s.bind("\0ward-wl"); s.listen(4)
while True:
    c,_=s.accept(); c.sendall(b"pong"); c.close()`
	abstractClient = `import socket; s=socket.socket(socket.AF_UNIX); s.connect("\0ward-wl"); print(s.recv(4).decode())`
)

// pg is postgres 15's directory in Debian 12.
const pg = "/usr/lib/postgresql/15/bin"

var checks = []check{
	{"service/nginx", "nginx serves", func(d door) error {
		if err := d.start(ctr{name: "nginx", cmd: []string{"nginx", "-g", "daemon off;"}}); err != nil {
			return err
		}
		return eventually(d, "nginx", "", "python3", "-c", httpGet)
	}},
	{"ops/nginx-reload", "nginx -s reload from an exec session, then still serving", func(d door) error {
		if err := d.start(ctr{name: "nginx-r", cmd: []string{"nginx", "-g", "daemon off;"}}); err != nil {
			return err
		}
		if err := eventually(d, "nginx-r", "", "python3", "-c", httpGet); err != nil {
			return err
		}
		if err := execOK(d, "nginx-r", "", "nginx", "-s", "reload"); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		return eventually(d, "nginx-r", "", "python3", "-c", httpGet)
	}},
	{"ops/kill-hup-1", "kill -HUP 1 from an exec session reaches the main process", func(d door) error {
		if err := d.start(ctr{name: "hup", cmd: []string{"python3", "-c", hupServer}}); err != nil {
			return err
		}
		if err := eventually(d, "hup", "", "python3", "-c", abstractClient); err != nil {
			return err
		}
		if err := execOK(d, "hup", "", "kill", "-HUP", "1"); err != nil {
			return err
		}
		return eventually(d, "hup", "", "test", "-f", "/tmp/hup")
	}},
	{"ops/abstract-socket", "an exec'd client reaches the main process's abstract socket", func(d door) error {
		if err := d.start(ctr{name: "abs", cmd: []string{"python3", "-c", hupServer}}); err != nil {
			return err
		}
		return eventually(d, "abs", "", "python3", "-c", abstractClient)
	}},
	{"ops/proc-1", "an exec session reads /proc/1/fd and /proc/1/environ of the main process", func(d door) error {
		if err := d.start(ctr{name: "proc1", cmd: []string{"sleep", "300"}}); err != nil {
			return err
		}
		return execOK(d, "proc1", "", sh("ls /proc/1/fd >/dev/null && cat /proc/1/environ >/dev/null && readlink /proc/1/cwd")...)
	}},
	{"service/redis-bgsave", "redis answers and BGSAVE forks and writes its dump", func(d door) error {
		if err := d.start(ctr{name: "redis", cmd: []string{"redis-server", "--dir", "/tmp", "--save", ""}}); err != nil {
			return err
		}
		if err := eventually(d, "redis", "", "redis-cli", "ping"); err != nil {
			return err
		}
		if err := execOK(d, "redis", "", "redis-cli", "bgsave"); err != nil {
			return err
		}
		return eventually(d, "redis", "", "test", "-s", "/tmp/dump.rdb")
	}},
	{"service/postgres", "postgres as its own user: query, pg_ctl reload and stop from an exec session", func(d door) error {
		if err := d.start(ctr{name: "pg", user: "postgres", cmd: sh(pg + "/initdb -D /tmp/pg >/dev/null && " + pg + "/postgres -D /tmp/pg -k /tmp -c listen_addresses=; sleep 300")}); err != nil {
			return err
		}
		if err := eventually(d, "pg", "postgres", "psql", "-h", "/tmp", "-d", "postgres", "-c", "select 1"); err != nil {
			return err
		}
		if err := execOK(d, "pg", "postgres", pg+"/pg_ctl", "-D", "/tmp/pg", "reload"); err != nil {
			return err
		}
		return execOK(d, "pg", "postgres", pg+"/pg_ctl", "-D", "/tmp/pg", "stop", "-m", "fast")
	}},
	{"ops/logs", "the manager's logs show the container's output", func(d door) error {
		if err := d.start(ctr{name: "logs", cmd: []string{"echo", "ward-wl-log-line"}}); err != nil {
			return err
		}
		var out string
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if out, err = d.logs("logs"); err == nil && strings.Contains(out, "ward-wl-log-line") {
				return nil
			}
		}
		return fmt.Errorf("logs: %q %v", out, err)
	}},
	{"ops/restart", "the manager restarts the container (Docker, Podman: restart; a kubelet: a new attempt in the pod)", func(d door) error {
		if err := d.start(ctr{name: "rs", cmd: []string{"sleep", "300"}}); err != nil {
			return err
		}
		if err := d.restart("rs"); err != nil {
			return err
		}
		return eventually(d, "rs", "", "true")
	}},
	{"data/stop-start", "files written before stop are readable by their users after start", func(d door) error {
		if err := d.start(ctr{name: "ss", cmd: []string{"sleep", "300"}}); err != nil {
			return err
		}
		if err := execOK(d, "ss", "", sh("useradd -u 1000 app && mkdir /state && echo kept > /state/f && chown -R app:app /state && chmod 700 /state")...); err != nil {
			return err
		}
		if err := d.stopStart("ss"); err != nil {
			return err
		}
		r := d.exec("ss", "1000", "cat", "/state/f")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "kept" {
			return fmt.Errorf("after stop/start, as uid 1000: %s", r)
		}
		return ok(d.exec("ss", "", sh("echo more >> /state/f && ls -ln /state")...), "after stop/start, as root")
	}},
	{"build/compile-run-tmp", "a binary compiled to /tmp runs", func(d door) error {
		return d.run(ctr{cmd: sh(`printf 'int main(){return 0;}' > /tmp/a.c && cc -o /tmp/a /tmp/a.c && /tmp/a`)})
	}},
	{"build/compile-run-cwd", "a binary compiled to the working directory runs", func(d door) error {
		// A directory of the image: Podman refuses a working directory
		// that does not exist.
		return d.run(ctr{workdir: "/root", cmd: sh(`printf 'int main(){return 0;}' > a.c && cc -o a a.c && ./a`)})
	}},
	{"build/configure-make", "./configure, then make that builds and runs", func(d door) error {
		return d.run(ctr{cmd: sh(`mkdir /src && cd /src &&
printf '#!/bin/sh\necho ok > config.status\n' > configure && chmod +x configure && ./configure &&
printf 'int main(){return 0;}' > hello.c && printf 'all:\n\tcc -o hello hello.c && ./hello\n' > Makefile && make`)})
	}},
	{"build/script-tmp", "a script written to /tmp runs", func(d door) error {
		return d.run(ctr{cmd: sh(`printf '#!/bin/sh\nexit 0\n' > /tmp/s.sh && chmod +x /tmp/s.sh && /tmp/s.sh`)})
	}},
	{"build/venv-pip", "python3 -m venv, then the venv's bin/pip", func(d door) error {
		return d.run(ctr{cmd: sh(`python3 -m venv /opt/venv && /opt/venv/bin/pip --version && python3 -m venv /tmp/v && /tmp/v/bin/python -c 'print(1)'`)})
	}},
	{"build/mkdir-root", "mkdir /scratch", func(d door) error {
		return d.run(ctr{cmd: sh(`mkdir /scratch && touch /scratch/f`)})
	}},
	{"build/dpkg-install", "dpkg -i of a package built in the container installs into /usr and runs", func(d door) error {
		return d.run(ctr{cmd: sh(`mkdir -p /tmp/p/DEBIAN /tmp/p/usr/local/bin &&
printf 'Package: ward-hello\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' > /tmp/p/DEBIAN/control &&
printf '#!/bin/sh\necho hello\n' > /tmp/p/usr/local/bin/ward-hello && chmod 755 /tmp/p/usr/local/bin/ward-hello &&
dpkg-deb --build /tmp/p /tmp/p.deb >/dev/null && dpkg -i /tmp/p.deb >/dev/null && ward-hello`)})
	}},
	{"user/non-root", "uid 1000 runs and writes /tmp", func(d door) error {
		return d.run(ctr{user: "1000:1000", cmd: sh(`test "$(id -u)" = 1000 && echo x > /tmp/x`)})
	}},
	{"user/read-only", "a read-only root filesystem with a writable /tmp", func(d door) error {
		return d.run(ctr{readOnly: true, cmd: sh(`echo x > /tmp/x && ! touch /etc/x 2>/dev/null`)})
	}},
	{"volume/named", "a volume (named; a pod's emptyDir): written by root and by uid 1000, read by another container", func(d door) error {
		vol := []mount{{volume: "wlvol", target: "/data"}}
		if err := d.run(ctr{mounts: vol, cmd: sh(`echo root > /data/r && mkdir /data/u && chown 1000:1000 /data/u`)}); err != nil {
			return err
		}
		if err := d.run(ctr{user: "1000", mounts: vol, cmd: sh(`echo user > /data/u/f`)}); err != nil {
			return err
		}
		return d.run(ctr{mounts: vol, cmd: sh(`grep -q root /data/r && grep -q user /data/u/f`)})
	}},
	{"volume/bind-root-writes", "container root writes to a host directory (bind mount; hostPath)", func(d door) error {
		host, err := d.hostDir("bind")
		if err != nil {
			return err
		}
		return d.run(ctr{mounts: []mount{{host: host, target: "/data"}}, cmd: sh(`echo x > /data/f`)})
	}},
	{"git/bind-workspace", "git status in a workspace mounted from the host", func(d door) error {
		host, err := d.hostDir("ws")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(host, "f"), []byte("x\n"), 0o644); err != nil {
			return err
		}
		ws := []mount{{host: host, target: "/ws"}}
		if err := d.run(ctr{mounts: ws, workdir: "/ws", cmd: []string{"git", "init", "-q"}}); err != nil {
			return err
		}
		return d.run(ctr{mounts: ws, workdir: "/ws", cmd: []string{"git", "status", "--short"}})
	}},
	{"volume/bind-workload-dir", "container root writes, and git works, in a host directory the operator gave to workloads (node.workloadDirs)", func(d door) error {
		host, err := d.hostDir(workloadDir + "/ws")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(host, "f"), []byte("x\n"), 0o644); err != nil {
			return err
		}
		ws := []mount{{host: host, target: "/ws"}}
		return d.run(ctr{mounts: ws, workdir: "/ws", cmd: sh("echo y > g && git init -q && git add f g && git status --short")})
	}},
	{"image/commit", "commit of an exited container: the layer's files are owned as in the container", func(d door) error {
		if err := d.start(ctr{name: "cm", cmd: sh(layerScript)}); err != nil {
			return err
		}
		if err := d.wait("cm"); err != nil {
			return err
		}
		if err := d.commit("cm", "wl-committed:1"); err != nil {
			return err
		}
		return sameOwners(d, "wl-committed:1", wantOwners)
	}},
	{"image/commit-running", "commit of a running container: the layer's files are owned as in the container", func(d door) error {
		if err := d.start(ctr{name: "cmr", cmd: sh(layerScript + " && touch /tmp/done && exec sleep 300")}); err != nil {
			return err
		}
		if err := eventually(d, "cmr", "", "test", "-f", "/tmp/done"); err != nil {
			return err
		}
		if err := d.commit("cmr", "wl-committed-running:1"); err != nil {
			return err
		}
		return sameOwners(d, "wl-committed-running:1", wantOwners)
	}},
	{"image/build", "an image build (Docker's classic builder, Podman's buildah): RUN steps run, the layer's files are owned as in the container", func(d door) error {
		if err := d.build("FROM "+image+"\nRUN "+strings.ReplaceAll(layerScript, "\n", " ")+"\n", "wl-built:1"); err != nil {
			return err
		}
		return sameOwners(d, "wl-built:1", wantOwners)
	}},
	{"image/cp-into-running", "cp into a running container, then read it as root and as uid 1000", func(d door) error {
		if err := d.start(ctr{name: "cpi", cmd: []string{"sleep", "300"}}); err != nil {
			return err
		}
		host, err := d.hostDir("cp")
		if err != nil {
			return err
		}
		src := filepath.Join(host, "cp-src")
		if err := os.WriteFile(src, []byte("copied\n"), 0o644); err != nil {
			return err
		}
		if err := d.cpIn(src, "cpi", "/tmp/copied"); err != nil {
			return err
		}
		r := d.exec("cpi", "1000", "cat", "/tmp/copied")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "copied" {
			return fmt.Errorf("reading the copy: %s", r)
		}
		// cp keeps the source's owner (host root here: 0), as the
		// container must see it.
		r = d.exec("cpi", "", "stat", "-c", "%u:%g", "/tmp/copied")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0:0" {
			return fmt.Errorf("owner of the copy inside: %s", r)
		}
		return nil
	}},
	{"image/cp-commit-running", "cp into a running container, then commit it with no exec in between: the copy is owned in the layer as under runc", func(d door) error {
		if err := d.start(ctr{name: "cpc", cmd: []string{"sleep", "300"}}); err != nil {
			return err
		}
		host, err := d.hostDir("cp-commit")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(host, "cpdir"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(host, "cpdir", "f"), []byte("in a directory\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(host, "copied"), []byte("copied\n"), 0o644); err != nil {
			return err
		}
		if err := d.cpIn(filepath.Join(host, "copied"), "cpc", "/tmp/copied"); err != nil {
			return err
		}
		if err := d.cpIn(filepath.Join(host, "cpdir"), "cpc", "/tmp/cpdir"); err != nil {
			return err
		}
		if err := d.commit("cpc", "wl-cp-committed:1"); err != nil {
			return err
		}
		return sameOwners(d, "wl-cp-committed:1", wantCopyOwners)
	}},
	{"image/cp-commit-exited", "cp into a running container, which then exits, then commit it, with no exec at all: the copy is owned in the layer as under runc", func(d door) error {
		// It exits on its own: waiting for the copy by name would wait
		// for good on Docker, whose copy a name the container looked up
		// before does not show (image/cp-into-running-seen).
		if err := d.start(ctr{name: "cpe", cmd: []string{"sleep", "6"}}); err != nil {
			return err
		}
		host, err := d.hostDir("cp-exited")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(host, "go"), []byte("go\n"), 0o644); err != nil {
			return err
		}
		if err := d.cpIn(filepath.Join(host, "go"), "cpe", "/tmp/go"); err != nil {
			return err
		}
		if err := d.wait("cpe"); err != nil {
			return err
		}
		if err := d.commit("cpe", "wl-cp-exited:1"); err != nil {
			return err
		}
		return sameOwners(d, "wl-cp-exited:1", map[string]string{"tmp/": "0:0", "tmp/go": "0:0"})
	}},
	{"image/cp-into-running-seen", "cp into a running container of a name the container looked for before, then read it", func(d door) error {
		if err := d.start(ctr{name: "cps", cmd: []string{"sleep", "300"}}); err != nil {
			return err
		}
		if err := execOK(d, "cps", "", sh("! test -e /tmp/late")...); err != nil {
			return err
		}
		host, err := d.hostDir("cp-seen")
		if err != nil {
			return err
		}
		src := filepath.Join(host, "late")
		if err := os.WriteFile(src, []byte("late\n"), 0o644); err != nil {
			return err
		}
		if err := d.cpIn(src, "cps", "/tmp/late"); err != nil {
			return err
		}
		r := d.exec("cps", "", "cat", "/tmp/late")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "late" {
			return fmt.Errorf("reading the copy: %s", r)
		}
		return nil
	}},
	{"image/cp-out", "cp out of a container", func(d door) error {
		if err := d.start(ctr{name: "cpo", cmd: sh("echo out > /tmp/o && exec sleep 300")}); err != nil {
			return err
		}
		if err := eventually(d, "cpo", "", "test", "-f", "/tmp/o"); err != nil {
			return err
		}
		host, err := d.hostDir("cp-out")
		if err != nil {
			return err
		}
		dst := filepath.Join(host, "o")
		if err := d.cpOut("cpo", "/tmp/o", dst); err != nil {
			return err
		}
		b, err := os.ReadFile(dst)
		if err != nil || strings.TrimSpace(string(b)) != "out" {
			return fmt.Errorf("copied out %q %v", b, err)
		}
		return nil
	}},
}

// driftChecks judge the drift rule both ways: a binary the image's own
// toolchain wrote (here dpkg, as apt-get install does) runs without an
// alert, one that another program wrote raises drift (wantAlerts).
var driftChecks = []check{
	{"build/dpkg-install-binary", "dpkg -i of a package holding a binary compiled in the container, then the installed binary runs", func(d door) error {
		return d.run(ctr{cmd: sh(`mkdir -p /tmp/q/DEBIAN /tmp/q/usr/local/bin &&
printf 'Package: ward-bin\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' > /tmp/q/DEBIAN/control &&
printf 'int main(){return 0;}' > /tmp/b.c && cc -o /tmp/q/usr/local/bin/ward-bin /tmp/b.c &&
dpkg-deb --build /tmp/q /tmp/q.deb >/dev/null && dpkg -i /tmp/q.deb >/dev/null && ward-bin`)})
	}},
	{"drift/dropped-binary", "a binary written by a program that is not the image's toolchain (python copying /bin/true), then run: drift", func(d door) error {
		// The sleeps keep the container alive around the exec: the sensor
		// opens beside the container's supervisor (about a second for
		// the first load of a door's state directory, measured when this
		// check ran first), and its alert names the container from a
		// record removed when it ends.
		return d.run(ctr{cmd: sh(`sleep 2 && python3 -c 'import shutil; shutil.copy("/bin/true", "/tmp/dropped")' && /tmp/dropped && sleep 1`)})
	}},
}

// layerScript writes the files whose owners image/commit and image/build
// compare with the tar headers of the resulting layer.
const layerScript = `useradd -u 1000 app && mkdir /app && touch /app/root && touch /app/user && chown 1000:1000 /app/user && mkdir /app/udir && chown 1000:1000 /app/udir`

// wantOwners are the owners the layer's tar headers must carry: as the
// container saw them, as runc leaves them.
var wantOwners = map[string]string{"app/": "0:0", "app/root": "0:0", "app/user": "1000:1000", "app/udir/": "1000:1000"}

// wantCopyOwners are the owners image/cp-commit-running's layer must
// carry: what Docker and Podman copy into a container is its root's
// (both give the copy the container's user, root here).
var wantCopyOwners = map[string]string{"tmp/": "0:0", "tmp/copied": "0:0", "tmp/cpdir/": "0:0", "tmp/cpdir/f": "0:0"}

// sameOwners compares the owners in the tar headers of img's top layer
// with want (entry name -> uid:gid).
func sameOwners(d door, img string, want map[string]string) error {
	got, err := d.layerOwners(img, want)
	if err != nil {
		return err
	}
	var diffs []string
	for name, w := range want {
		if got[name] != w {
			diffs = append(diffs, fmt.Sprintf("%s owned %q, want %q", name, got[name], w))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		return fmt.Errorf("layer tar headers: %s", strings.Join(diffs, "; "))
	}
	return nil
}
