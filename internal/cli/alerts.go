package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/nodeconfig"
)

// alertsCommand is `ward alerts`: the node's run-time alerts, whichever
// front door raised them (they all append to the node's alert file).
func alertsCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "alerts [--json] [--follow] [--file PATH]",
		Short: "print the node's run-time alerts (Falco format with --json)",
		Long: "Prints the alerts ward's supervisor and sensors raised on this node, oldest first.\n" +
			"With --json each alert is the Falco-format JSON line Falcosidekick accepts;\n" +
			"with --follow ward keeps printing new alerts until interrupted.",
		Args: cobra.NoArgs,
	}
	asJSON := c.Flags().Bool("json", false, "print each alert as its Falco-format JSON line")
	follow := c.Flags().BoolP("follow", "f", false, "keep printing alerts as they are raised")
	file := c.Flags().String("file", "", "the alert file (default: the node configuration's)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		path := *file
		if path == "" {
			cfg, err := nodeconfig.Load(nodeconfig.Sources{Getenv: os.Getenv})
			if err != nil {
				return err
			}
			if path = cfg.AlertPath(); path == "" {
				return fmt.Errorf("the node configuration turns the alert file off (alerts.file: %s)", alert.NoFile)
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		return printAlerts(ctx, env.Stdout, path, *asJSON, *follow, 250*time.Millisecond)
	}
	return c
}

// printAlerts prints the alerts in path; with follow it keeps reading,
// reopening the path when it is rotated, until ctx ends.
func printAlerts(ctx context.Context, w io.Writer, path string, asJSON, follow bool, poll time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && follow {
		f = nil // not created yet: wait for it
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil // no alert was ever raised
	} else if err != nil {
		return fmt.Errorf("reading alerts: %w", err)
	}
	var r *bufio.Reader
	if f != nil {
		defer func() { f.Close() }()
		r = bufio.NewReaderSize(f, 64<<10)
	}
	var partial []byte
	for {
		if r != nil {
			line, err := r.ReadBytes('\n')
			partial = append(partial, line...)
			if err == nil {
				printAlert(w, partial, asJSON)
				partial = partial[:0]
				continue
			}
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading alerts: %w", err)
			}
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		// Rotated: finish nothing more from the old file (a partial line
		// there is dropped) and start the new one from its beginning.
		if cur, err := os.Stat(path); err == nil {
			if f == nil {
				f, _ = os.Open(path)
			} else if old, err := f.Stat(); err == nil && !os.SameFile(old, cur) {
				f.Close()
				f, _ = os.Open(path)
				partial = partial[:0]
			}
			if f != nil {
				r = bufio.NewReaderSize(f, 64<<10)
			}
		}
	}
}

func printAlert(w io.Writer, line []byte, asJSON bool) {
	if asJSON {
		w.Write(line)
		return
	}
	a, err := alert.Parse(line)
	if err != nil {
		fmt.Fprintf(w, "(unreadable alert line: %v)\n", err)
		return
	}
	fmt.Fprintf(w, "%s (rule: %s)\n", a.Output, a.Rule)
}
