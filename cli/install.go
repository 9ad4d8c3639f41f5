package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ward-runtime/ward/install"
)

// runInstall implements `ward install`: ward's binaries, configuration,
// default policy and containerd drop-in on this node (or the node mounted
// at --root), recorded so that `ward uninstall` can revert exactly that.
func runInstall(env *Env, args []string) int {
	fs := newFlagSet(env, "install", "[--root DIR] [--dry-run] [--bin-dir DIR] [--from DIR]")
	root := fs.String("root", "/", "the node's root directory (/host in ward's DaemonSet)")
	dryRun := fs.Bool("dry-run", false, "print every change and write nothing")
	binDir := fs.String("bin-dir", "/usr/local/bin", "host directory for ward's binaries")
	from := fs.String("from", "", "directory holding the binaries to install (default: the running ward's directory)")
	path := fs.String("path", "", "colon-separated host directories searched for runc, runsc and containerd-shim-kata-v2 (default: $PATH with --root /, else the usual sbin and bin directories)")
	runc := fs.String("runc", "", "runc's host path, instead of searching")
	runsc := fs.String("runsc", "", "runsc's host path, instead of searching")
	kata := fs.String("kata-shim", "", "containerd-shim-kata-v2's host path, instead of searching")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 0 {
		return ExitBadInput
	}
	if *from == "" {
		if *from, err = executableDir(); err != nil {
			return fail(env, ExitError, err)
		}
	}
	search := install.DefaultSearchPath()
	switch {
	case *path != "":
		search = filepath.SplitList(*path)
	case filepath.Clean(*root) == "/":
		search = filepath.SplitList(os.Getenv("PATH"))
	}
	node := install.Node{Root: *root, BinDir: *binDir, From: *from, Path: search, Runc: *runc, Runsc: *runsc, KataShim: *kata}
	np, err := node.Build()
	if err != nil {
		return fail(env, ExitError, err)
	}
	in := &install.Installer{Root: *root}
	var changes []install.Change
	if *dryRun {
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
	fmt.Fprintf(env.Stdout, "containerd handlers: %s (in %s)\n", strings.Join(names, ", "), install.DropInPath)
	for _, a := range np.Advice {
		fmt.Fprintf(env.Stdout, "\nACTION NEEDED: %s\n", a)
	}
	switch {
	case *dryRun:
		fmt.Fprintln(env.Stdout, "\ndry run: nothing was written")
	default:
		fmt.Fprintln(env.Stdout, "\nrestart containerd to load the handlers; `ward doctor` checks the node; `ward uninstall` reverts this")
	}
	return ExitOK
}

// runUninstall implements `ward uninstall`: it removes what the install
// manifest records and restores the files install backed up.
func runUninstall(env *Env, args []string) int {
	flags := newFlagSet(env, "uninstall", "[--root DIR] [--dry-run]")
	root := flags.String("root", "/", "the node's root directory")
	dryRun := flags.Bool("dry-run", false, "print every change and write nothing")
	pos, err := parse(flags, args)
	if err != nil || len(pos) != 0 {
		return ExitBadInput
	}
	manifest := filepath.Join(*root, install.ManifestPath)
	if _, err := os.Stat(manifest); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(env.Stdout, "nothing to do: no install manifest at %s\n", manifest)
		return ExitOK
	}
	changes, err := (&install.Installer{Root: *root}).Uninstall(*dryRun)
	for _, c := range changes {
		fmt.Fprintln(env.Stdout, c)
	}
	if err != nil {
		return fail(env, ExitError, err)
	}
	if *dryRun {
		fmt.Fprintln(env.Stdout, "\ndry run: nothing was changed")
	} else {
		fmt.Fprintln(env.Stdout, "\nrestart containerd so that it forgets ward's handlers; remove ward from Docker's daemon.json or Podman's containers.conf if you added it")
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
