package wardruntime

import (
	"fmt"
	"strings"
)

// globals are runc's global flags plus ward's own.
type globals struct {
	root          string
	rootSet       bool
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string // "" when not given
	help          bool
	version       bool

	// ward's own flags; runc has none of these names.
	wardConfig      string
	wardPolicy      string
	wardDecisionLog string
	wardRunc        string
	wardRunsc       string

	// extra are global flags ward does not know, handed to runc as written.
	extra []string
}

func globalFlags() *flagSpec {
	return newSpec(false,
		[]string{"debug", "systemd-cgroup", "version,v"},
		[]string{"root", "log", "log-format", "rootless",
			"ward-config", "ward-policy", "ward-decision-log", "ward-runc", "ward-runsc"},
		nil)
}

// parseGlobals reads the global flags, which end at the subcommand's name,
// and returns the subcommand with its arguments.
func parseGlobals(args []string) (globals, []string, error) {
	g := globals{logFormat: "text"}
	spec := globalFlags()
	i := 0
	for ; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			i++
			break
		}
		if !isFlagWord(w) {
			break
		}
		raw, value, hasValue := splitFlagWord(w)
		name, kind, known := spec.lookup(raw)
		if !known {
			// A runc flag newer than ward: pass it on. Without "=" ward
			// cannot tell whether the next word is its value, so it assumes
			// a bool, as every runc global flag but the four above is.
			g.extra = append(g.extra, w)
			continue
		}
		if kind != boolFlag && !hasValue {
			if i+1 >= len(args) {
				return g, nil, fmt.Errorf("flag needs an argument: -%s", raw)
			}
			i++
			value = args[i]
		}
		on := !hasValue || value == "true" || value == "1"
		switch name {
		case "root":
			g.root, g.rootSet = value, true
		case "log":
			g.log = value
		case "log-format":
			g.logFormat = value
		case "rootless":
			g.rootless = value
		case "debug":
			g.debug = on
		case "systemd-cgroup":
			g.systemdCgroup = on
		case "help":
			g.help = on
		case "version":
			g.version = on
		case "ward-config":
			g.wardConfig = value
		case "ward-policy":
			g.wardPolicy = value
		case "ward-decision-log":
			g.wardDecisionLog = value
		case "ward-runc":
			g.wardRunc = value
		case "ward-runsc":
			g.wardRunsc = value
		}
	}
	switch g.logFormat {
	case "text", "json":
	default:
		return g, nil, fmt.Errorf("invalid log-format: %s", g.logFormat)
	}
	switch g.rootless {
	case "", "true", "false", "auto":
	default:
		return g, nil, fmt.Errorf("invalid value %q for flag --rootless (true, false or auto)", g.rootless)
	}
	if strings.ContainsRune(g.root, 0) {
		return g, nil, fmt.Errorf("invalid --root")
	}
	return g, args[i:], nil
}

// backendGlobals are the global flags for a backend: runc gets runc's as
// given; runsc gets the ones it shares, spelled the way it reads them.
func (g *globals) backendGlobals(runsc bool, root string) []string {
	var out []string
	out = append(out, "--root", root)
	if g.log != "" {
		out = append(out, "--log", g.log)
	}
	if g.logFormat != "" {
		out = append(out, "--log-format", g.logFormat)
	}
	if g.debug {
		out = append(out, "--debug")
	}
	if g.systemdCgroup {
		out = append(out, "--systemd-cgroup")
	}
	if runsc {
		// runsc's --rootless is a bool; runc's "auto" means "only if
		// unprivileged", which ward (running as root) is not.
		if g.rootless == "true" {
			out = append(out, "--rootless")
		}
		return out
	}
	if g.rootless != "" {
		out = append(out, "--rootless", g.rootless)
	}
	return append(out, g.extra...)
}
