package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ward-runtime/ward/internal/version"
)

// manCommand is `ward man DIR`: man pages for ward and every subcommand,
// generated from the same command definitions as --help (`make man`, and
// the packages ship them). Hidden: it is for packagers, not operators.
func manCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:    "man DIR",
		Short:  "write ward's man pages into DIR",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
	}
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := os.MkdirAll(args[0], 0o755); err != nil {
			return status(fail(env, ExitError, err))
		}
		header := &doc.GenManHeader{Title: "WARD", Section: "1", Source: "ward " + version.Version(), Manual: "ward manual"}
		root := c.Root()
		// Deterministic pages: no generation date.
		root.DisableAutoGenTag = true
		if err := doc.GenManTree(root, header, args[0]); err != nil {
			return status(fail(env, ExitError, fmt.Errorf("writing man pages: %w", err)))
		}
		return nil
	}
	return c
}
