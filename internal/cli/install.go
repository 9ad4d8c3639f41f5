package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/install"
	"github.com/ward-runtime/ward/internal/sensor"
)

// installOptions are `ward install`'s flags.
type installOptions struct {
	root, binDir, from, path string
	runc, runsc, kata        string
	containerdVersion        string
	dryRun                   bool
}

// installCommand is `ward install`: ward's binaries, configuration,
// default policy and containerd drop-in on this node (or the node mounted
// at --root), recorded so that `ward uninstall` can revert exactly that.
func installCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "install [flags]",
		Short: "put ward on this node: binaries, config, policy, containerd handlers",
		Args:  cobra.NoArgs,
	}
	var o installOptions
	f := c.Flags()
	f.StringVar(&o.root, "root", "/", "the node's root directory (/host in ward's DaemonSet)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print every change and write nothing")
	f.StringVar(&o.binDir, "bin-dir", "/usr/local/bin", "host directory for ward's binaries")
	f.StringVar(&o.from, "from", "", "directory holding the binaries to install (default: the running ward's directory)")
	f.StringVar(&o.path, "path", "", "colon-separated host directories searched for runc, runsc and containerd-shim-kata-v2 (default: $PATH with --root /, else the usual sbin and bin directories)")
	f.StringVar(&o.runc, "runc", "", "runc's host path, instead of searching")
	f.StringVar(&o.runsc, "runsc", "", "runsc's host path, instead of searching")
	f.StringVar(&o.kata, "kata-shim", "", "containerd-shim-kata-v2's host path, instead of searching")
	f.StringVar(&o.containerdVersion, "containerd-version", "", "the host containerd's version (e.g. 2.4), when its binary does not say (default: read from the containerd binary found on --path)")
	c.RunE = func(*cobra.Command, []string) error { return status(runInstall(env, o)) }
	return c
}

func runInstall(env *Env, o installOptions) int {
	if o.from == "" {
		var err error
		if o.from, err = executableDir(); err != nil {
			return fail(env, ExitError, err)
		}
	}
	search := install.DefaultSearchPath()
	switch {
	case o.path != "":
		search = filepath.SplitList(o.path)
	case filepath.Clean(o.root) == "/":
		search = filepath.SplitList(os.Getenv("PATH"))
	}
	node := install.Node{Root: o.root, BinDir: o.binDir, From: o.from, Path: search, Runc: o.runc, Runsc: o.runsc, KataShim: o.kata, ContainerdVersion: o.containerdVersion}
	np, err := node.Build()
	if err != nil {
		return fail(env, ExitError, err)
	}
	in := &install.Installer{Root: o.root}
	var changes []install.Change
	if o.dryRun {
		changes, err = in.Plan(np.Files)
	} else {
		changes, err = in.Apply(np.Files)
	}
	// Print what was done even when a later file failed: the manifest has
	// it, and the operator needs to know.
	for _, c := range changes {
		fmt.Fprintln(env.Stdout, c)
	}
	if err != nil {
		return fail(env, ExitError, err)
	}
	fmt.Fprintf(env.Stdout, "\nruntimes: runc %s, runsc %s, kata shim %s\n", orNone(np.Runtimes.Runc), orNone(np.Runtimes.Runsc), orNone(np.Runtimes.KataShim))
	var names []string
	for _, h := range np.Handlers {
		names = append(names, h.Name)
	}
	fmt.Fprintf(env.Stdout, "containerd handlers: %s (in %s)\n", strings.Join(names, ", "), np.Layout.DropIn())
	// ward-deploy.sh reads this line to know what to restart.
	fmt.Fprintf(env.Stdout, "containerd layout: %s (%s; restarted by: systemctl restart %s)\n",
		np.Layout.Name, np.Layout.Config, strings.Join(np.Layout.Units, " or "))
	for _, a := range np.Advice {
		fmt.Fprintf(env.Stdout, "\nACTION NEEDED: %s\n", a)
	}
	switch {
	case o.dryRun:
		fmt.Fprintln(env.Stdout, "\ndry run: nothing was written")
	default:
		fmt.Fprintf(env.Stdout, "\nrestart containerd (systemctl restart %s) to load the handlers; `ward doctor` checks the node; `ward uninstall` reverts this\n",
			strings.Join(np.Layout.Units, " or "))
	}
	return ExitOK
}

// uninstallCommand is `ward uninstall`: it removes what the install
// manifest records and restores the files install backed up.
func uninstallCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "uninstall [--root DIR] [--dry-run]",
		Short: "revert exactly what ward install wrote",
		Args:  cobra.NoArgs,
	}
	root := c.Flags().String("root", "/", "the node's root directory")
	dryRun := c.Flags().Bool("dry-run", false, "print every change and write nothing")
	c.RunE = func(*cobra.Command, []string) error { return status(runUninstall(env, *root, *dryRun)) }
	return c
}

func runUninstall(env *Env, root string, dryRun bool) int {
	if code := unpinSensors(env, root, dryRun); code != ExitOK {
		return code
	}
	manifest := filepath.Join(root, install.ManifestPath)
	if _, err := os.Stat(manifest); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(env.Stdout, "nothing to do: no install manifest at %s\n", manifest)
		return ExitOK
	}
	changes, err := (&install.Installer{Root: root}).Uninstall(dryRun)
	for _, c := range changes {
		fmt.Fprintln(env.Stdout, c)
	}
	if err != nil {
		return fail(env, ExitError, err)
	}
	if dryRun {
		fmt.Fprintln(env.Stdout, "\ndry run: nothing was changed")
	} else {
		fmt.Fprintln(env.Stdout, "\nrestart containerd so that it forgets ward's handlers; remove ward from Docker's daemon.json or Podman's containers.conf if you added it")
	}
	return ExitOK
}

// unpinSensors removes the node-wide eBPF sensors ward pinned in bpffs
// (docs/sensors.md): they outlive every process, so nothing else would.
// They are the running kernel's: only an uninstall of "/" touches them.
func unpinSensors(env *Env, root string, dryRun bool) int {
	if filepath.Clean(root) != "/" {
		fmt.Fprintf(env.Stdout, "the eBPF sensors pinned in this node's bpffs (%s) are left: run `ward uninstall` on the node itself to remove them\n", sensor.PinRoot)
		return ExitOK
	}
	if dryRun {
		pins, err := sensor.ListPinned()
		if err != nil {
			return fail(env, ExitError, err)
		}
		for _, p := range pins {
			fmt.Fprintf(env.Stdout, "unpin %s (eBPF sensor)\n", p.Dir)
		}
		return ExitOK
	}
	dirs, err := sensor.RemovePinned()
	for _, d := range dirs {
		fmt.Fprintf(env.Stdout, "unpin %s (eBPF sensor)\n", d)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(env, ExitError, err)
	}
	return ExitOK
}

// executableDir is where the running ward lives: by default install copies
// the binaries built beside it.
func executableDir() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding ward's own binary: %w", err)
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		return "", fmt.Errorf("finding ward's own binary: %w", err)
	}
	return filepath.Dir(exe), nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
