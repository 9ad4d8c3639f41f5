package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"

	"github.com/ward-runtime/ward/doctor"
)

// runDoctor implements `ward doctor`: PASS/WARN/FAIL checks of this node,
// in the manner of kube-bench and docker-bench.
func runDoctor(env *Env, args []string) int {
	fs := newFlagSet(env, "doctor", "[--json] [--root DIR]")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	root := fs.String("root", "/", "check the files under DIR instead of / (kernel probes still look at this kernel)")
	path := fs.String("path", os.Getenv("PATH"), "where to look for runtime binaries (default: $PATH, under --root when that is given)")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 0 {
		return ExitBadInput
	}
	pathSet := false
	fs.Visit(func(f *flag.Flag) { pathSet = pathSet || f.Name == "path" })
	if *root != "/" && !pathSet {
		*path = underRoot(*root, *path)
	}
	results := doctor.Run(&doctor.Node{Root: *root, Path: *path, Kernel: doctor.HostKernel{}})
	if *asJSON {
		err = doctor.WriteJSON(env.Stdout, results)
	} else {
		err = doctor.WriteText(env.Stdout, results)
	}
	if err != nil {
		return fail(env, ExitError, err)
	}
	if doctor.Failed(results) {
		return ExitCheckFailed
	}
	return ExitOK
}

// underRoot is the search path list with every entry moved under root: the
// runtimes of the tree being checked, not this machine's.
func underRoot(root, list string) string {
	dirs := filepath.SplitList(list)
	for i, d := range dirs {
		dirs[i] = filepath.Join(root, d)
	}
	return strings.Join(dirs, string(filepath.ListSeparator))
}
