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
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/nodeconfig"
)

// alertsCommand is `ward alerts`: the node's run-time alerts, whichever
// front door raised them (they all append to the node's alert file).
func alertsCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "alerts [--json] [--follow] [--all] [--file PATH]",
		Short: "print the node's run-time alerts (Falco format with --json)",
		Long: "Prints the alerts ward's supervisor and sensors raised on this node, oldest first.\n" +
			"With --json each alert is the Falco-format JSON line Falcosidekick accepts;\n" +
			"with --follow ward keeps printing new alerts until interrupted. With --all the notices\n" +
			"follow: what ward saw and did not alert on (a build job running what the image's own\n" +
			"toolchain built), at priority Informational with a count.",
		Args: cobra.NoArgs,
	}
	asJSON := c.Flags().Bool("json", false, "print each alert as its Falco-format JSON line")
	follow := c.Flags().BoolP("follow", "f", false, "keep printing alerts as they are raised")
	all := c.Flags().Bool("all", false, "also print the notices (counted, not alerted: build artefacts executed)")
	file := c.Flags().String("file", "", "the alert file (default: the node configuration's; with --all, "+alert.NoticeFileName+" beside it)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		path, notices := *file, ""
		if path != "" {
			notices = filepath.Join(filepath.Dir(path), alert.NoticeFileName)
		} else {
			cfg, err := nodeconfig.Load(nodeconfig.Sources{Getenv: os.Getenv})
			if err != nil {
				return err
			}
			notices = alert.NoticePath(cfg.StateDir)
			if path = cfg.AlertPath(); path == "" && !*all {
				return fmt.Errorf("the node configuration turns the alert file off (alerts.file: %s)", alert.NoFile)
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		var paths []string
		if path != "" {
			paths = append(paths, path)
		}
		if *all {
			paths = append(paths, notices)
		}
		return printAll(ctx, env.Stdout, paths, *asJSON, *follow, 250*time.Millisecond)
	}
	return c
}

// printAll prints the alert files in paths: one after the other, or,
// following, all at once as lines come.
func printAll(ctx context.Context, w io.Writer, paths []string, asJSON, follow bool, poll time.Duration) error {
	if !follow || len(paths) == 1 {
		for _, p := range paths {
			if err := printAlerts(ctx, w, p, asJSON, follow, poll); err != nil {
				return err
			}
		}
		return nil
	}
	lw := &lockedWriter{w: w}
	errs := make(chan error, len(paths))
	for _, p := range paths {
		go func() { errs <- printAlerts(ctx, lw, p, asJSON, follow, poll) }()
	}
	var err error
	for range paths {
		err = errors.Join(err, <-errs)
	}
	return err
}

// lockedWriter keeps the lines of several followers whole.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
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
