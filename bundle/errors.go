package bundle

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is a problem with the input spec. Path names the offending field in
// the dotted form operators know from kubectl and jq ("process.user.uid",
// "mounts[3].source"); it is empty when the problem is with the file as a whole.
type Error struct {
	// File is the file the spec came from, or "" when parsed from memory.
	File string
	// Path is the field, e.g. `linux.maskedPaths[2]`.
	Path string
	// Line and Column locate a decoding error in the file (1-based), or
	// are 0.
	Line, Column int
	Err          error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// fieldPath turns a JSON pointer ("/mounts/3/source") into the dotted path
// ward prints ("mounts[3].source"). Keys that are not plain identifiers, such
// as annotation names, are quoted: annotations["io.kubernetes.cri.sandbox-id"].
func fieldPath(tokens []string) string {
	var b strings.Builder
	for _, tok := range tokens {
		switch {
		case isIndex(tok):
			b.WriteString("[")
			b.WriteString(tok)
			b.WriteString("]")
		case isIdent(tok):
			if b.Len() > 0 {
				b.WriteString(".")
			}
			b.WriteString(tok)
		default:
			b.WriteString("[")
			b.WriteString(strconv.Quote(tok))
			b.WriteString("]")
		}
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
