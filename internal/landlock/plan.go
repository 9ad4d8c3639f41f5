package landlock

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Entry is one directory entry as Plan needs it. Listers leave out
// symbolic links and special files: a link's target gets its access from
// where it really is, and a rule on a link would land on its target.
type Entry struct {
	Name string
	Dir  bool
	// Exec is true for a regular file with an execute bit.
	Exec bool
}

// Lister lists a directory of the container's filesystem. A missing
// directory is reported with an error wrapping fs.ErrNotExist.
type Lister func(dir string) ([]Entry, error)

// Grant is one concrete Landlock rule: access to Path and, for a
// directory, everything below it.
type Grant struct {
	Path   string
	Access Access
}

// Plan turns r into grants on the container's filesystem.
//
// Landlock rights only add up down a hierarchy: a rule cannot take away
// below what it gives above. So a directory whose access is not included in
// the access of every rule below it (the rootfs with "rx" above /tmp with
// "rw", say) is split: it gets only r, its entries are planned one by one,
// and a regular file among them keeps the directory's access. Splitting
// reads directories, hence the lister; only directories on the way to a
// rule are read.
//
// entry is the program the launcher is about to run, symbolic links
// resolved. When it lies in the image (no rule of r covers it) and the
// image's access lacks x, as on a writable rootfs, it gets r and x for
// itself: the workload's own binary must run wherever the image keeps it.
// Files in writable places never get this.
func Plan(r Ruleset, entry string, list Lister) ([]Grant, error) {
	rules := make(map[string]Access, len(r.Paths))
	for _, p := range r.Paths {
		rules[p.Path] |= p.Access
	}
	p := planner{rules: rules, list: list}
	p.sorted = make([]string, 0, len(rules))
	for k := range rules {
		p.sorted = append(p.sorted, k)
	}
	slices.Sort(p.sorted)
	if err := p.walk("/", r.Root, true); err != nil {
		return nil, err
	}
	for _, k := range p.sorted {
		if err := p.walk(k, rules[k], false); err != nil {
			return nil, err
		}
	}
	if entry != "" && path.IsAbs(entry) {
		entry = path.Clean(entry)
		if p.covering(entry) == "" && p.access(entry)&Exec == 0 {
			p.grants = append(p.grants, Grant{Path: entry, Access: Read | Exec})
		}
	}
	return p.grants, nil
}

type planner struct {
	rules  map[string]Access
	sorted []string
	list   Lister
	grants []Grant
}

// below returns the rule paths strictly below dir.
func (p *planner) below(dir string) []string {
	prefix := dir + "/"
	if dir == "/" {
		prefix = "/"
	}
	var out []string
	for _, k := range p.sorted {
		if k != dir && strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// covering returns the deepest rule path at or above name, or "".
func (p *planner) covering(name string) string {
	best := ""
	for _, k := range p.sorted {
		if (name == k || strings.HasPrefix(name, k+"/")) && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// access is what the planned grants give name.
func (p *planner) access(name string) Access {
	var a Access
	for _, g := range p.grants {
		if name == g.Path || strings.HasPrefix(name, strings.TrimSuffix(g.Path, "/")+"/") {
			a |= g.Access
		}
	}
	return a
}

func (p *planner) walk(dir string, a Access, image bool) error {
	split := false
	for _, k := range p.below(dir) {
		if a&^p.rules[k] != 0 {
			split = true
			break
		}
	}
	if !split {
		p.grants = append(p.grants, Grant{Path: dir, Access: a})
		return nil
	}
	p.grants = append(p.grants, Grant{Path: dir, Access: a & Read})
	entries, err := p.list(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a rule for a missing path is skipped, like the path
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := path.Join(dir, e.Name)
		if _, ok := p.rules[name]; ok {
			continue // planned on its own
		}
		switch {
		case e.Dir:
			if err := p.walk(name, a, image); err != nil {
				return err
			}
		case image && e.Exec && a&Exec == 0:
			// An image file with an execute bit in a split directory
			// stays executable; its directory only has r, so it cannot
			// be replaced.
			p.grants = append(p.grants, Grant{Path: name, Access: Read | Exec})
		default:
			p.grants = append(p.grants, Grant{Path: name, Access: a})
		}
	}
	return nil
}
