package landlock

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode reads an encoded ruleset (Encode's output) and validates it.
//
// It is a small reader for this one JSON object rather than encoding/json:
// ward-init decodes a ruleset at every container start and exec, and
// encoding/json's reflection costs a cold process about 0.2 ms (and its
// code a larger binary to page in). It is stricter than encoding/json:
// keys match exactly and at most once, strings are valid UTF-8, nothing
// may follow the object. A fuzz test checks that whatever it accepts,
// encoding/json reads the same way.
func Decode(s string) (Ruleset, error) {
	d := decoder{s: s}
	r, err := d.ruleset()
	if err != nil {
		return Ruleset{}, fmt.Errorf("decoding ruleset: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Ruleset{}, err
	}
	return r, nil
}

type decoder struct {
	s string
	i int
}

// errAt names the byte offset of a syntax error.
func (d *decoder) errAt(what string) error {
	if d.i >= len(d.s) {
		return fmt.Errorf("%s at end of input", what)
	}
	return fmt.Errorf("%s at offset %d", what, d.i)
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c,
// consuming it if so.
func (d *decoder) next(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *decoder) expect(c byte) error {
	if !d.next(c) {
		return d.errAt(fmt.Sprintf("want %q", c))
	}
	return nil
}

// null consumes a JSON null.
func (d *decoder) null() bool {
	d.space()
	if len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null" {
		d.i += 4
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field for each key, which
// must consume the value. A key given twice is refused.
func (d *decoder) object(field func(key string) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.next('}') {
		return nil
	}
	var seen []string
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		for _, k := range seen {
			if k == key {
				return fmt.Errorf("field %q given twice", key)
			}
		}
		seen = append(seen, key)
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		if d.next('}') {
			return nil
		}
		if err := d.expect(','); err != nil {
			return err
		}
	}
}

// array reads [value, ...], calling elem for each, which must consume
// it.
func (d *decoder) array(elem func(i int) error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.next(']') {
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		if d.next(']') {
			return nil
		}
		if err := d.expect(','); err != nil {
			return err
		}
	}
}

// str reads a JSON string.
func (d *decoder) str() (string, error) {
	if err := d.expect('"'); err != nil {
		return "", err
	}
	start := d.i
	// The common case, no escapes: a slice of the input.
	for d.i < len(d.s) {
		c := d.s[d.i]
		if c == '"' {
			out := d.s[start:d.i]
			d.i++
			if !utf8.ValidString(out) {
				return "", errors.New("string is not valid UTF-8")
			}
			return out, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", d.errAt("control character in string")
		}
		d.i++
	}
	b := []byte(d.s[start:d.i])
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(b) {
				return "", errors.New("string is not valid UTF-8")
			}
			return string(b), nil
		case c < 0x20:
			return "", d.errAt("control character in string")
		case c != '\\':
			b = append(b, c)
			d.i++
			continue
		}
		d.i++ // the backslash
		if d.i >= len(d.s) {
			break
		}
		e := d.s[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, err := d.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				// Only a well-formed pair is a character.
				if len(d.s)-d.i < 2 || d.s[d.i:d.i+2] != `\u` {
					return "", d.errAt("lone surrogate in string")
				}
				d.i += 2
				r2, err := d.hex4()
				if err != nil {
					return "", err
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", d.errAt("invalid surrogate pair in string")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", d.errAt(fmt.Sprintf("invalid escape \\%c", e))
		}
	}
	return "", d.errAt("unterminated string")
}

func (d *decoder) hex4() (rune, error) {
	if len(d.s)-d.i < 4 {
		return 0, d.errAt("short \\u escape")
	}
	v, err := strconv.ParseUint(d.s[d.i:d.i+4], 16, 32)
	if err != nil {
		return 0, d.errAt("invalid \\u escape")
	}
	d.i += 4
	return rune(v), nil
}

// integer reads a JSON number that must be an integer between lo and hi.
func (d *decoder) integer(lo, hi int64) (int64, error) {
	d.space()
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
	}
	switch {
	case d.i == digits:
		return 0, d.errAt("want an integer")
	case d.s[digits] == '0' && d.i-digits > 1:
		return 0, d.errAt("leading zero in number")
	case d.i < len(d.s) && (d.s[d.i] == '.' || d.s[d.i] == 'e' || d.s[d.i] == 'E'):
		return 0, d.errAt("want an integer")
	}
	v, err := strconv.ParseInt(d.s[start:d.i], 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("number %s out of range %d to %d", d.s[start:d.i], lo, hi)
	}
	return v, nil
}

func (d *decoder) access() (Access, error) {
	s, err := d.str()
	if err != nil {
		return 0, err
	}
	return ParseAccess(s)
}

// ports reads null (nil: unrestricted) or a list (possibly empty: refuse
// all), keeping the two apart as Ruleset does.
func (d *decoder) ports() ([]uint16, error) {
	if d.null() {
		return nil, nil
	}
	out := []uint16{}
	err := d.array(func(int) error {
		v, err := d.integer(0, 65535)
		out = append(out, uint16(v))
		return err
	})
	return out, err
}

// boolean consumes true or false.
func (d *decoder) boolean() (bool, error) {
	d.space()
	for _, w := range [...]string{"false", "true"} {
		if len(d.s)-d.i >= len(w) && d.s[d.i:d.i+len(w)] == w {
			d.i += len(w)
			return w == "true", nil
		}
	}
	return false, d.errAt("want true or false")
}

func (d *decoder) ruleset() (Ruleset, error) {
	var r Ruleset
	err := d.object(func(key string) error {
		var err error
		switch key {
		case "profile":
			r.Profile, err = d.str()
		case "root":
			r.Root, err = d.access()
		case "paths":
			if d.null() {
				return nil
			}
			err = d.array(func(i int) error {
				var p PathRule
				err := d.object(func(key string) error {
					var err error
					switch key {
					case "path":
						p.Path, err = d.str()
					case "access":
						p.Access, err = d.access()
					default:
						return fmt.Errorf("paths[%d]: unknown field %q", i, key)
					}
					return err
				})
				r.Paths = append(r.Paths, p)
				return err
			})
		case "tcpConnect":
			r.TCPConnect, err = d.ports()
		case "tcpBind":
			r.TCPBind, err = d.ports()
		case "scope":
			if d.null() {
				return nil
			}
			err = d.array(func(int) error {
				s, err := d.str()
				r.Scope = append(r.Scope, s)
				return err
			})
		case "hostNetwork":
			r.HostNetwork, err = d.boolean()
		case "audit":
			r.Audit, err = d.boolean()
		case "requireABI":
			var v int64
			v, err = d.integer(-1<<31, 1<<31-1)
			r.RequireABI = int(v)
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return Ruleset{}, err
	}
	d.space()
	if d.i != len(d.s) {
		return Ruleset{}, d.errAt("data after the ruleset")
	}
	return r, nil
}
