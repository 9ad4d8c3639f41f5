package wardruntime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"
)

func listFlags() *flagSpec { return newSpec(false, []string{"quiet,q"}, []string{"format,f"}, nil) }

// listEntry is one line of `runc list --format json`; callers parse it.
type listEntry struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

// runList implements `list`: the containers of every backend under this
// root, in runc's formats.
func runList(c *ctx, cl cmdline) error {
	if len(cl.operands) != 0 {
		return errors.New(`list: "list" requires exactly 0 argument(s)`)
	}
	format, _ := cl.value("format")
	if format == "" {
		format = "table"
	}
	if format != "table" && format != "json" {
		return errors.New("invalid format option")
	}
	entries, err := c.listAll()
	if err != nil {
		return err
	}
	out := c.env.Stdout
	if cl.bool("quiet") {
		for _, e := range entries {
			fmt.Fprintln(out, e.ID)
		}
		return nil
	}
	if format == "json" {
		return json.NewEncoder(out).Encode(entries)
	}
	w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
	fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Pid, e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), e.Owner)
	}
	return w.Flush()
}

// listAll asks runc and each runsc root in use for its containers.
func (c *ctx) listAll() ([]listEntry, error) {
	recs, err := c.records().all()
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Record, len(recs))
	targets := []target{c.defaultTarget()}
	seen := map[string]bool{targets[0].root: true}
	for _, r := range recs {
		byID[r.ID] = r
		if !seen[r.Root] {
			seen[r.Root] = true
			targets = append(targets, target{backend: r.Backend, path: r.Runtime, flags: r.Flags, root: r.Root})
		}
	}
	var all []listEntry
	known := map[string]bool{}
	for _, t := range targets {
		if _, err := os.Stat(t.root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		entries, err := c.listOne(t)
		if err != nil {
			return nil, err
		}
		for i := range entries {
			e := &entries[i]
			if r := byID[e.ID]; r != nil {
				if e.Created.IsZero() {
					e.Created = r.Created
				}
				if e.Bundle == "" {
					e.Bundle = r.Bundle
				}
			}
			if e.Owner == "" {
				e.Owner = ownerName()
			}
		}
		for _, e := range entries {
			known[e.ID] = true
		}
		all = append(all, entries...)
	}
	c.prune(recs, known)
	return all, nil
}

// staleAfter is how old a record must be before list may prune it: a
// record is written just before its backend's create, and a list in between
// must not take it for a leftover.
const staleAfter = time.Minute

// prune removes records of containers no backend knows any more: those of
// foreground runs (the backend deleted the container, ward had already
// handed over) and of creates that failed and were never deleted.
func (c *ctx) prune(recs []*Record, known map[string]bool) {
	for _, r := range recs {
		if !known[r.ID] && time.Since(r.Created) > staleAfter {
			c.log.debugf("ward-runtime: pruning the record of %s, which no backend knows", r.ID)
			if err := c.forget(r); err != nil {
				c.log.warn(fmt.Sprintf("ward-runtime: %v", err))
			}
		}
	}
}

// listOne runs one backend's `list --format json`. runsc prints OCI state
// documents, a subset of runc's entries, so both decode into listEntry.
func (c *ctx) listOne(t target) ([]listEntry, error) {
	argv := c.argv(t, "list", []string{"--format", "json"})
	cmd := exec.Command(t.path, argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = c.env.Environ
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("listing %s containers: %w: %s", t.backend, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var entries []listEntry
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &entries); err != nil {
		return nil, fmt.Errorf("reading %s's container list: %w", t.backend, err)
	}
	return entries, nil
}

func ownerName() string {
	uid := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return "#" + uid
}
