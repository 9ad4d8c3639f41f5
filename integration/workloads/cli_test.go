package workloads_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ward-runtime/ward/integration/harness"
)

// cliDoor is Docker or Podman: their command lines agree on every
// operation the checks use (run, exec, logs, restart, stop, start, commit,
// build, cp, save), so one door serves both with its own client.
type cliDoor struct {
	door_, runtime_ string
	dir             string // the daemon's private directory
	decided         string
	// cli runs the client with args; argv is its full command line
	// (for streaming `save`), env its environment.
	argv []string
	env  []string
	// runFlags go into every run/create (Podman's here: no network,
	// ulimits this machine's root can set).
	runFlags []string
}

func (d *cliDoor) doorName() string    { return d.door_ }
func (d *cliDoor) runtime() string     { return d.runtime_ }
func (d *cliDoor) decisionLog() string { return d.decided }

func (d *cliDoor) cli(args ...string) harness.DockerResult {
	o, e, code := harness.Command(cliTimeout, d.env, append(append([]string(nil), d.argv...), args...)...)
	return harness.DockerResult{Stdout: o, Stderr: e, Code: code}
}

func (d *cliDoor) ok(args ...string) error {
	return ok(d.cli(args...), d.door_+" "+strings.Join(args, " "))
}

// runArgs are c as run flags, image and command.
func (d *cliDoor) runArgs(c ctr) []string {
	a := append([]string(nil), d.runFlags...)
	if c.user != "" {
		a = append(a, "--user", c.user)
	}
	if c.workdir != "" {
		a = append(a, "-w", c.workdir)
	}
	if c.readOnly {
		a = append(a, "--read-only", "--tmpfs", "/tmp")
	}
	for _, m := range c.mounts {
		src := m.volume
		if m.host != "" {
			src = m.host
		}
		a = append(a, "-v", src+":"+m.target)
	}
	return append(append(a, image), c.cmd...)
}

func (d *cliDoor) run(c ctr) error {
	return d.ok(append([]string{"run", "--rm"}, d.runArgs(c)...)...)
}

func (d *cliDoor) start(c ctr) error {
	return d.ok(append([]string{"run", "-d", "--name", c.name}, d.runArgs(c)...)...)
}

func (d *cliDoor) wait(name string) error {
	r := d.cli("wait", name)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		return fmt.Errorf("%s wait %s: %s", d.door_, name, r)
	}
	return nil
}

func (d *cliDoor) exec(name, user string, cmd ...string) harness.DockerResult {
	a := []string{"exec"}
	if user != "" {
		a = append(a, "--user", user)
	}
	return d.cli(append(append(a, name), cmd...)...)
}

func (d *cliDoor) logs(name string) (string, error) {
	r := d.cli("logs", name)
	return r.Stdout + r.Stderr, ok(r, d.door_+" logs")
}

func (d *cliDoor) restart(name string) error { return d.ok("restart", "-t", "1", name) }

func (d *cliDoor) stopStart(name string) error {
	if err := d.ok("stop", "-t", "1", name); err != nil {
		return err
	}
	return d.ok("start", name)
}

func (d *cliDoor) commit(name, img string) error { return d.ok("commit", name, img) }

func (d *cliDoor) build(dockerfile, tag string) error {
	ctx, err := os.MkdirTemp(d.dir, "build.")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	return d.ok("build", "-q", "-t", tag, ctx)
}

func (d *cliDoor) cpIn(src, name, dst string) error  { return d.ok("cp", src, name+":"+dst) }
func (d *cliDoor) cpOut(name, src, dst string) error { return d.ok("cp", name+":"+src, dst) }

func (d *cliDoor) hostDir(name string) (string, error) {
	p := filepath.Join(d.dir, "host", name)
	return p, os.MkdirAll(p, 0o755)
}

func (d *cliDoor) removeAll() {
	if r := d.cli("ps", "-aq"); strings.TrimSpace(r.Stdout) != "" {
		d.cli(append([]string{"rm", "-f"}, strings.Fields(r.Stdout)...)...)
	}
}

// layerOwners reads `save img` (Docker's archive format, which Podman
// writes too) as a stream, the base layer being most of a gigabyte, and
// returns the owners in the tar headers of the top layer's entries that
// want names.
func (d *cliDoor) layerOwners(img string, want map[string]string) (map[string]string, error) {
	cmd := exec.Command(d.argv[0], append(append([]string(nil), d.argv[1:]...), "save", img)...)
	cmd.Env = d.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	defer io.Copy(io.Discard, out)
	owners := map[string]map[string]string{} // layer tar -> entry -> uid:gid
	var manifest []struct{ Layers []string }
	outer := tar.NewReader(out)
	for {
		h, err := outer.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("save: %w (%s)", err, stderr.String())
		}
		switch {
		case h.Name == "manifest.json":
			if err := json.NewDecoder(outer).Decode(&manifest); err != nil {
				return nil, err
			}
		case strings.HasSuffix(h.Name, ".tar"):
			got := map[string]string{}
			inner := tar.NewReader(outer)
			for {
				ih, err := inner.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("layer %s: %w", h.Name, err)
				}
				if _, ok := want[ih.Name]; ok {
					got[ih.Name] = fmt.Sprintf("%d:%d", ih.Uid, ih.Gid)
				}
			}
			owners[h.Name] = got
		}
	}
	if len(manifest) != 1 || len(manifest[0].Layers) == 0 {
		return nil, fmt.Errorf("save: manifest %v", manifest)
	}
	return owners[manifest[0].Layers[len(manifest[0].Layers)-1]], nil
}
