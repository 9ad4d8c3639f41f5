package wardruntime

import (
	"fmt"
	"slices"
	"strings"
)

// flagKind says how a runc flag consumes its value.
type flagKind int

const (
	boolFlag  flagKind = iota // --x or --x=true|false; never takes the next word
	valueFlag                 // --x V or --x=V
	listFlag                  // a value flag that may repeat (--env, --cap)
)

// flagSpec describes the flags of one runc subcommand. Names are canonical
// long names; aliases maps short names to them.
type flagSpec struct {
	kinds   map[string]flagKind
	aliases map[string]string
	// inOrder is true for subcommands whose flags end at the first operand
	// (runc's exec and ps: everything after the container ID belongs to the
	// command). Elsewhere runc accepts flags after operands too.
	inOrder bool
}

// parsedFlag is one flag as it appeared on the command line.
type parsedFlag struct {
	name  string // canonical name, or the name as written for an unknown flag
	value string // "" for a bool flag written without a value
	// hasValue is true when a value was given (for bool flags: --x=false).
	hasValue bool
	// tokens are the words it took on the command line, so that flags ward
	// does not interpret are handed to the backend exactly as written.
	tokens []string
}

// cmdline is a subcommand's arguments split into flags and operands.
type cmdline struct {
	flags    []parsedFlag
	operands []string
}

// lookup returns the canonical name and kind of a flag word such as
// "--bundle" or "-b". ok is false for a word the spec does not know.
func (s *flagSpec) lookup(name string) (string, flagKind, bool) {
	if long, ok := s.aliases[name]; ok {
		name = long
	}
	k, ok := s.kinds[name]
	return name, k, ok
}

// isFlagWord reports whether w looks like a flag: runc (urfave/cli) accepts
// one or two dashes; "-" alone is an operand and "--" ends the flags.
func isFlagWord(w string) bool {
	return len(w) > 1 && w[0] == '-' && w != "--"
}

// splitFlagWord turns "--name=value" into ("name", "value", true).
func splitFlagWord(w string) (name, value string, hasValue bool) {
	w = strings.TrimPrefix(strings.TrimPrefix(w, "-"), "-")
	name, value, hasValue = strings.Cut(w, "=")
	return name, value, hasValue
}

// parse splits args the way runc does. Unknown flags are kept (as bool
// flags unless written with "="), so that pass-through never loses a word,
// but they are reported to callers that must understand every flag.
func (s *flagSpec) parse(args []string) (cmdline, error) {
	var c cmdline
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			c.operands = append(c.operands, args[i+1:]...)
			break
		}
		if !isFlagWord(w) || (s.inOrder && len(c.operands) > 0) {
			c.operands = append(c.operands, w)
			continue
		}
		raw, value, hasValue := splitFlagWord(w)
		name, kind, known := s.lookup(raw)
		f := parsedFlag{name: name, value: value, hasValue: hasValue, tokens: []string{w}}
		if !known {
			f.name = raw
		}
		if known && kind != boolFlag && !hasValue {
			if i+1 >= len(args) {
				return c, fmt.Errorf("flag needs an argument: -%s", raw)
			}
			i++
			f.value, f.hasValue = args[i], true
			f.tokens = append(f.tokens, args[i])
		}
		c.flags = append(c.flags, f)
	}
	return c, nil
}

// value returns the last value given for name ("" if none) and whether the
// flag appeared.
func (c *cmdline) value(name string) (string, bool) {
	v, seen := "", false
	for _, f := range c.flags {
		if f.name == name {
			v, seen = f.value, true
		}
	}
	return v, seen
}

// values returns every value of a repeatable flag, in order.
func (c *cmdline) values(name string) []string {
	var out []string
	for _, f := range c.flags {
		if f.name == name {
			out = append(out, f.value)
		}
	}
	return out
}

// bool reports a bool flag's value: true when written bare or =true.
func (c *cmdline) bool(name string) bool {
	v, seen := c.value(name)
	if !seen {
		return false
	}
	return v == "" || v == "true" || v == "1"
}

// has reports whether name appeared.
func (c *cmdline) has(name string) bool {
	_, seen := c.value(name)
	return seen
}

// tokens returns the flags' words, leaving out the named ones, for handing
// to a backend.
func (c *cmdline) tokens(drop ...string) []string {
	var out []string
	for _, f := range c.flags {
		if slices.Contains(drop, f.name) {
			continue
		}
		out = append(out, f.tokens...)
	}
	return out
}

// unknown lists the flags the spec did not know.
func (c *cmdline) unknown(s *flagSpec) []string {
	var out []string
	for _, f := range c.flags {
		if _, _, ok := s.lookup(f.name); !ok {
			out = append(out, f.tokens[0])
		}
	}
	return out
}

// newSpec builds a flagSpec from "name[,alias...]" entries per kind.
func newSpec(inOrder bool, bools, values, lists []string) *flagSpec {
	s := &flagSpec{kinds: map[string]flagKind{}, aliases: map[string]string{}, inOrder: inOrder}
	add := func(entries []string, k flagKind) {
		for _, e := range entries {
			names := strings.Split(e, ",")
			s.kinds[names[0]] = k
			for _, a := range names[1:] {
				s.aliases[a] = names[0]
			}
		}
	}
	add(bools, boolFlag)
	add(values, valueFlag)
	add(lists, listFlag)
	// urfave/cli adds --help/-h to every subcommand.
	s.kinds["help"] = boolFlag
	s.aliases["h"] = "help"
	return s
}
