package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/atomicfile"
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

// WriteSpec replaces the config.json at path with s and keeps the caller's
// file beside it as path+OrigSuffix: a hard link to the original inode (no
// copy, byte for byte what the caller wrote; an older .orig from an earlier
// create of a reused bundle is replaced). The new file is renamed over the
// old, so a runtime reading config.json sees one whole spec, old or new.
//
// No fsync: the runtime reads the file back within milliseconds, and a
// bundle does not outlive a crash of the machine it runs on (containerd,
// Docker and Podman write bundles afresh for every create).
func WriteSpec(path string, s *specs.Spec) error {
	data, err := Encode(s)
	if err != nil {
		return err
	}
	orig := path + OrigSuffix
	if err := os.Remove(orig); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keeping the original spec: %w", err)
	}
	if err := os.Link(path, orig); err != nil {
		return fmt.Errorf("keeping the original spec: %w", err)
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
