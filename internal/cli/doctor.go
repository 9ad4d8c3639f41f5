package cli

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/doctor"
)

// doctorCommand is `ward doctor`: PASS/WARN/FAIL checks of this node, in
// the manner of kube-bench and docker-bench.
func doctorCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "doctor [--json] [--root DIR]",
		Short: "check this node's kernel, runtimes and container manager",
		Args:  cobra.NoArgs,
	}
	asJSON := jsonFlag(c, "the results")
	root := c.Flags().String("root", "/", "check the files under DIR instead of / (kernel probes still look at this kernel)")
	path := c.Flags().String("path", os.Getenv("PATH"), "where to look for runtime binaries (default: $PATH, under --root when that is given)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if *root != "/" && !c.Flags().Changed("path") {
			*path = underRoot(*root, *path)
		}
		return status(runDoctor(env, *root, *path, *asJSON))
	}
	return c
}

func runDoctor(env *Env, root, path string, asJSON bool) int {
	k, err := doctor.NewHostKernel()
	if err != nil {
		return fail(env, ExitError, err)
	}
	results := doctor.Run(&doctor.Node{Root: root, Path: path, Kernel: k})
	if asJSON {
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
