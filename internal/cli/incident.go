package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/internal/incident"
	"github.com/ward-runtime/ward/internal/nodeconfig"
	"github.com/ward-runtime/ward/internal/version"
)

// incidentCommand is `ward incident list|show|export`: the incident bundles
// ward collected when it froze or killed a container (internal/incident),
// under the node's state directory.
func incidentCommand(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "incident",
		Short: "list, show and export the incident bundles ward collected",
		Args:  cobra.NoArgs,
	}
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "list the node's incidents, oldest first",
		Args:  cobra.NoArgs,
	}
	listJSON := jsonFlag(list, "the incidents")
	list.RunE = func(*cobra.Command, []string) error { return status(incidentList(env, *listJSON)) }

	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "show an incident's manifest and verify its files (ID or a unique prefix of it)",
		Args:  cobra.ExactArgs(1),
	}
	showJSON := jsonFlag(show, "the manifest and its verification")
	show.RunE = func(_ *cobra.Command, args []string) error { return status(incidentShow(env, args[0], *showJSON)) }

	export := &cobra.Command{
		Use:   "export ID [-o FILE]",
		Short: "write an incident as a .tar.gz (verified first) to FILE or stdout",
		Args:  cobra.ExactArgs(1),
	}
	out := export.Flags().StringP("output", "o", "", "write the archive to FILE (default: stdout, unless it is a terminal)")
	export.RunE = func(_ *cobra.Command, args []string) error { return status(incidentExport(env, args[0], *out)) }

	c.AddCommand(list, show, export)
	return c
}

// incidentStore is the node's store, under the state directory the node
// configuration names.
func incidentStore() (incident.Store, error) {
	cfg, err := nodeconfig.Load(nodeconfig.Sources{Getenv: os.Getenv})
	if err != nil {
		return incident.Store{}, err
	}
	return incident.NewStore(cfg.StateDir), nil
}

// incidentStatus is the exit status for an error about an incident.
func incidentStatus(err error) int {
	if errors.Is(err, incident.ErrNotFound) {
		return ExitBadInput
	}
	return ExitError
}

func incidentList(env *Env, asJSON bool) int {
	s, err := incidentStore()
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	l, err := s.List()
	if err != nil {
		return fail(env, ExitError, err)
	}
	if asJSON {
		if l == nil {
			l = []incident.Manifest{}
		}
		return writeJSON(env, struct {
			WardVersion string              `json:"wardVersion"`
			Incidents   []incident.Manifest `json:"incidents"`
		}{version.Version(), l})
	}
	if len(l) == 0 {
		fmt.Fprintf(env.Stdout, "no incidents in %s\n", s.Dir)
		return ExitOK
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONTAINER\tPOD\tRULE\tRESPONSE\tFREEZER\tPROCESSES")
	for _, m := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", m.ID, orDash(shortID(m.Container.ID)), orDash(podName(m)),
			orDash(m.Trigger.Rule), orDash(m.Trigger.Response), orDash(string(m.Container.Freezer)), m.Container.Processes)
	}
	if err := tw.Flush(); err != nil {
		return fail(env, ExitError, err)
	}
	return ExitOK
}

func incidentShow(env *Env, arg string, asJSON bool) int {
	s, err := incidentStore()
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	id, err := s.Resolve(arg)
	if err != nil {
		return fail(env, incidentStatus(err), err)
	}
	m, err := s.Manifest(id)
	if err != nil {
		return fail(env, incidentStatus(err), err)
	}
	verr := s.Verify(id)
	code := ExitOK
	if verr != nil {
		code = ExitError
	}
	if asJSON {
		problem := ""
		if verr != nil {
			problem = verr.Error()
		}
		if c := writeJSON(env, struct {
			WardVersion string             `json:"wardVersion"`
			Verified    bool               `json:"verified"`
			Problem     string             `json:"problem,omitempty"`
			Manifest    *incident.Manifest `json:"manifest"`
		}{version.Version(), verr == nil, problem, m}); c != ExitOK {
			return c
		}
		return code
	}
	w := env.Stdout
	fmt.Fprintf(w, "incident   %s (%s)\n", m.ID, s.Dir)
	fmt.Fprintf(w, "time       %s\n", m.Time.Format("2006-01-02 15:04:05.000000000Z07:00"))
	fmt.Fprintf(w, "container  %s (pid %d, %s, freezer %s)\n", m.Container.ID, m.Container.Pid, orDash(m.Container.Cgroup), orDash(string(m.Container.Freezer)))
	if p := podName(*m); p != "" {
		fmt.Fprintf(w, "pod        %s\n", p)
	}
	fmt.Fprintf(w, "rule       %s\nresponse   %s\n", orDash(m.Trigger.Rule), orDash(m.Trigger.Response))
	if m.Trigger.Output != "" {
		fmt.Fprintf(w, "alert      %s\n", m.Trigger.Output)
	}
	fmt.Fprintf(w, "collected by ward %s; %d processes\n\nfiles:\n", m.WardVersion, m.Container.Processes)
	for _, f := range m.Files {
		fmt.Fprintf(w, "  %-18s %8d  sha256:%s\n", f.Name, f.Size, f.SHA256)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if verr != nil {
		fmt.Fprintf(env.Stderr, "ward: %v\n", verr)
	} else {
		fmt.Fprintln(w, "verified: every file matches the manifest")
	}
	return code
}

func incidentExport(env *Env, arg, output string) int {
	s, err := incidentStore()
	if err != nil {
		return fail(env, ExitBadInput, err)
	}
	id, err := s.Resolve(arg)
	if err != nil {
		return fail(env, incidentStatus(err), err)
	}
	if output == "" {
		if f, ok := env.Stdout.(*os.File); ok && isTerminal(f) {
			return fail(env, ExitBadInput, errors.New("refusing to write a .tar.gz to a terminal: use -o FILE or redirect stdout"))
		}
		if err := s.Export(id, env.Stdout); err != nil {
			return fail(env, incidentStatus(err), err)
		}
		return ExitOK
	}
	// Written whole or not at all: a half archive is not evidence.
	var buf bytes.Buffer
	if err := s.Export(id, &buf); err != nil {
		return fail(env, incidentStatus(err), err)
	}
	if err := atomicfile.Write(output, buf.Bytes(), 0o600, true); err != nil {
		return fail(env, ExitError, err)
	}
	fmt.Fprintf(env.Stderr, "ward: incident %s written to %s\n", id, output)
	return ExitOK
}

// podName is namespace/pod of the incident's workload, "" when it has none.
func podName(m incident.Manifest) string {
	if m.Workload == nil || m.Workload.Pod == "" {
		return ""
	}
	return m.Workload.Namespace + "/" + m.Workload.Pod
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeJSON prints v indented.
func writeJSON(env *Env, v any) int {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail(env, ExitError, err)
	}
	return ExitOK
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
