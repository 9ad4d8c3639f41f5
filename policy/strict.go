package policy

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bool is a policy boolean: YAML 1.2's true or false, unquoted. YAML 1.1's
// yes/no/on/off and quoted strings are refused rather than guessed: the
// YAML library took "yes" as true but refused "false", so two spellings
// people use for the same intent decoded differently.
type Bool bool

// UnmarshalYAML accepts only a boolean-tagged scalar (true, True, TRUE,
// false, False, FALSE).
func (b *Bool) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return fmt.Errorf("line %d: want true or false (unquoted), got %q", n.Line, n.Value)
	}
	*b = Bool(strings.EqualFold(n.Value, "true"))
	return nil
}

// oneDocument refuses a second YAML document after the policy: the
// decoder would read the first and ignore the rest, so a file whose author
// meant "---" to add rules would silently lose them.
func oneDocument(dec *yaml.Decoder) error {
	var next yaml.Node
	err := dec.Decode(&next)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("line %d: a second YAML document: a policy file holds exactly one (no ---)", next.Line)
}

// Glob alphabets: the characters that can appear in what each kind of glob
// is matched against. A glob with any other character can never match
// (glob's only wildcard is '*'; '?' and '[' are literal), so it is refused.
const (
	namespaceChars = "abcdefghijklmnopqrstuvwxyz0123456789-"
	imageChars     = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@"
)

// validGlobs checks each glob against the alphabet of what it matches, and
// asks the matcher itself to match the glob's shortest expansion, so
// that validation and matching cannot drift apart.
func validGlobs(globs []string, what, alphabet string, keys ...any) error {
	for i, g := range globs {
		at := append(append([]any{}, keys...), i)
		if g == "" {
			return errAt(errors.New("empty: matches nothing"), at...)
		}
		for _, c := range g {
			if c == '*' || strings.ContainsRune(alphabet, c) {
				continue
			}
			hint := ""
			if c == '?' || c == '[' || c == ']' || c == '{' {
				hint = " ('*' is the only wildcard)"
			}
			return errAt(fmt.Errorf("%q can never match: %q does not occur in %s%s", g, c, what, hint), at...)
		}
		if what == "a namespace" && len(strings.ReplaceAll(g, "*", "")) > 63 {
			return errAt(fmt.Errorf("%q can never match: namespaces are at most 63 characters", g), at...)
		}
		if !glob(g, strings.ReplaceAll(g, "*", "")) {
			return errAt(fmt.Errorf("%q does not match its own expansion", g), at...)
		}
	}
	return nil
}
