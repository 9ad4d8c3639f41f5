package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/atomicfile"
)

// encodeOptions write a spec as runc's encoding/json would (omitempty
// leaves out false and 0, nil slices are null), so that the rewritten
// config.json reads back to the same spec in any runtime.
var encodeOptions = json.JoinOptions(jsonv1.DefaultOptionsV1(), jsonv1.OmitEmptyWithLegacySemantics(true))

// Encode writes s as config.json bytes, with a trailing newline.
//
// It uses the decoder's JSON library rather than encoding/json: a front door
// that runs once per container (ward-runtime) then builds the reflection
// tables for the spec's types once, for decoding and encoding alike, instead
// of once per library (about 1 ms of a cold process).
func Encode(s *specs.Spec) ([]byte, error) {
	data, err := json.Marshal(s, encodeOptions)
	if err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	return append(data, '\n'), nil
}

// OrigSuffix names the copy of config.json as the caller wrote it, kept
// beside the rewritten one for forensics (`ward explain` can diff them).
// It goes away with the bundle.
const OrigSuffix = ".orig"

// RewrittenAnnotation marks a config.json as ward's rewrite; its value
// names the caller's original beside it. A bundle run again (`runc run` of
// the same directory twice, as people do) then starts from the caller's
// spec, not from ward's output for an earlier container (see LoadOriginal).
const RewrittenAnnotation = "ward.dev/rewritten-from"

// LoadOriginal loads a bundle for a create: its config.json, or, when that
// is ward's own rewrite from an earlier create of the same bundle, the
// caller's original kept beside it. The result's ConfigPath is config.json
// either way, the file to write the new rewrite to; FromOrig says which
// was read. A spec that only claims to be a rewrite (the annotation, no
// original beside it) is read as it is.
func LoadOriginal(dir string, maxSize int64) (*Bundle, error) {
	b, err := Load(dir, maxSize)
	if err != nil || b.Dir == "" {
		return b, err
	}
	orig := b.ConfigPath + OrigSuffix
	if b.Spec.Annotations[RewrittenAnnotation] != filepath.Base(orig) {
		return b, nil
	}
	if _, err := os.Lstat(orig); err != nil {
		return b, nil
	}
	o, err := Load(orig, maxSize)
	if err != nil {
		return nil, err
	}
	o.Dir, o.ConfigPath, o.FromOrig = b.Dir, b.ConfigPath, true
	return o, nil
}

// WriteSpec replaces b's config.json with b.Spec, marked with
// RewrittenAnnotation, and keeps the caller's file beside it as
// config.json+OrigSuffix: a hard link to the original inode (no copy, byte
// for byte what the caller wrote). When b was read from that original
// (FromOrig), it stays as it is; otherwise an older one, from a create of a
// bundle the caller has since rewritten, is replaced. The new file is
// renamed over the old, so a runtime reading config.json sees one whole
// spec, old or new.
//
// No fsync: the runtime reads the file back within milliseconds, and a
// bundle does not outlive a crash of the machine it runs on (containerd,
// Docker and Podman write bundles afresh for every create).
func WriteSpec(b *Bundle) error {
	path := b.ConfigPath
	orig := path + OrigSuffix
	s := b.Spec
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[RewrittenAnnotation] = filepath.Base(orig)
	data, err := Encode(s)
	if err != nil {
		return err
	}
	if !b.FromOrig {
		if err := os.Remove(orig); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keeping the original spec: %w", err)
		}
		if err := os.Link(path, orig); err != nil {
			return fmt.Errorf("keeping the original spec: %w", err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("writing rewritten spec: %w", err)
	}
	if err := atomicfile.Write(path, data, fi.Mode().Perm(), false); err != nil {
		return fmt.Errorf("writing rewritten spec: %w", err)
	}
	return nil
}
