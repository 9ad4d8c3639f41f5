package bundle

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// decodeOptions make the decoder at least as strict as any runtime that will
// read the same bytes. runc decodes with encoding/json, which matches member
// names case-insensitively and lets the last of two duplicate members win; a
// spec that says "noNewPrivileges": true and then "NoNewPrivileges": false
// would look hardened to a lenient checker and run unhardened. ward therefore
// refuses duplicate names, case-variant names (they are unknown members here)
// and members the runtime-spec version ward was built with does not define:
// what ward cannot read, it cannot judge.
var decodeOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// Parse decodes and validates one OCI runtime spec. Every error is an *Error
// naming the field.
func Parse(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s, decodeOptions); err != nil {
		return nil, decodeError(data, err)
	}
	if err := Validate(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeError converts the JSON library's errors, which carry RFC 6901
// pointers and byte offsets, into an *Error with a dotted field path and
// the line and column people look for in an editor.
func decodeError(data []byte, err error) error {
	var semErr *json.SemanticError
	if errors.As(err, &semErr) {
		path := fieldPath(pointerTokens(semErr.JSONPointer))
		line, col := lineColumn(data, semErr.ByteOffset)
		return &Error{Path: path, Line: line, Column: col, Err: semanticReason(semErr)}
	}
	var synErr *jsontext.SyntacticError
	if errors.As(err, &synErr) {
		line, col := lineColumn(data, synErr.ByteOffset)
		return &Error{
			Path: fieldPath(pointerTokens(synErr.JSONPointer)),
			Line: line, Column: col,
			Err: fmt.Errorf("malformed JSON: %w", synErr.Err),
		}
	}
	return &Error{Err: fmt.Errorf("decoding spec: %w", err)}
}

func semanticReason(e *json.SemanticError) error {
	if errors.Is(e.Err, json.ErrUnknownName) {
		return fmt.Errorf("unknown field (not in OCI runtime-spec %s; field names are case-sensitive)", specs.Version)
	}
	want := "value"
	if e.GoType != nil {
		want = e.GoType.String()
	}
	if e.Err != nil {
		return fmt.Errorf("cannot use JSON %s as %s: %w", kindName(e.JSONKind), want, e.Err)
	}
	return fmt.Errorf("cannot use JSON %s as %s", kindName(e.JSONKind), want)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

func pointerTokens(p jsontext.Pointer) []string {
	var toks []string
	for tok := range p.Tokens() {
		toks = append(toks, tok)
	}
	return toks
}

// lineColumn is the 1-based line and column (in bytes) of offset in data;
// 0, 0 when the offset is unknown.
func lineColumn(data []byte, offset int64) (int, int) {
	if offset <= 0 && len(data) == 0 || offset < 0 || offset > int64(len(data)) {
		return 0, 0
	}
	before := data[:offset]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}
