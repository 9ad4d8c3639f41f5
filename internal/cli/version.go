package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/version"
)

// versionCommand is `ward version`: the build ward was stamped with at
// link time (`ward --version` prints the first line only).
func versionCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "version [--json]",
		Short: "print ward's version",
		Args:  cobra.NoArgs,
	}
	asJSON := jsonFlag(c, "the version")
	c.RunE = func(*cobra.Command, []string) error {
		if !*asJSON {
			fmt.Fprintln(env.Stdout, version.String("ward"))
			return nil
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			WardVersion string `json:"wardVersion"`
			Go          string `json:"go"`
			Platform    string `json:"platform"`
		}{version.Version(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH})
	}
	return c
}
