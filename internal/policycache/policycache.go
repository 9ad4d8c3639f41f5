// Package policycache keeps each parsed and validated policy in a compact
// file keyed by a digest of everything the parse depends on, so that a
// front door that lives for one container (ward-runtime) reads one small
// JSON file instead of parsing the policy's YAML and validating it again
// at every call.
//
// The key covers the policy's bytes (the file's content, or the embedded
// default), its path, ward's version and the running binary's identity: a
// changed policy or another build has another key, so a stale policy is
// never served. An entry is
// checked before use (format, key, SHA-256 of its body, a strict decode,
// the policy's own validation, which also derives its unexported state)
// and only trusted when the file is ward's own (a regular file owned by
// the caller's user, writable by no one else); anything else is a miss,
// and a miss parses the policy from the very bytes that made the key.
package policycache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/go-json-experiment/json"

	"github.com/ward-runtime/ward/internal/atomicfile"
	"github.com/ward-runtime/ward/internal/bounded"
	"github.com/ward-runtime/ward/internal/version"
	"github.com/ward-runtime/ward/policy"
)

// format names the entry layout; a new layout changes every key.
const format = "ward-policy-cache/1"

// maxEntries bounds the directory: entries of older policies and builds
// are removed when a new one is written.
const maxEntries = 16

// maxEntry bounds an entry's size: a policy is at most
// policy.MaxPolicySize of YAML, and its JSON is of the same order.
const maxEntry = 4 * policy.MaxPolicySize

// Dir is a cache directory; "" caches nothing.
type Dir string

// Load returns the policy at path, or the embedded default when path is ""
// (policy.Load's contract), from the cache when it holds a valid entry for
// exactly these bytes, and parses it otherwise, leaving an entry for the
// next call. Errors are the policy's own; a cache that cannot be read or
// written only costs the parse.
func (d Dir) Load(path string) (*policy.Policy, error) {
	src, name := policy.DefaultYAML(), policy.DefaultSource
	if path != "" {
		var err error
		if src, err = bounded.ReadFile(path, policy.MaxPolicySize); err != nil {
			return nil, fmt.Errorf("reading policy: %w", err)
		}
		name = path
	}
	if d == "" {
		return policy.Parse(src, name)
	}
	key := Key(src, name)
	file := filepath.Join(string(d), key+".json")
	if p, ok := read(file, key); ok {
		return p, nil
	}
	p, err := policy.Parse(src, name)
	if err != nil {
		return nil, err
	}
	d.write(file, key, p)
	return p, nil
}

// Key is the entry's name for a policy parsed from src, named name: a
// SHA-256 over everything that decides what the parse returns.
func Key(src []byte, name string) string {
	defaultYAML := string(policy.DefaultYAML())
	h := sha256.New()
	for _, part := range []string{format, version.Version(), binaryID(), defaultYAML, name, string(src)} {
		fmt.Fprintf(h, "%d:", len(part))
		io.WriteString(h, part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// binaryID identifies the running executable's file (device, inode, size,
// modification time): a rebuilt binary, even with the same version
// string, has its own entries (and an entry written by a build with
// another Policy type is never decoded). "" when it cannot be read,
// leaving the version to tell builds apart.
func binaryID() string {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d/%d/%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
}

// Entries are "<format> <key> <sha256 of body>\n" and the body, the
// policy as JSON.

// encoding keeps nil and empty slices and maps apart, so that a decoded
// entry is the parsed policy exactly.
func encoding() json.Options {
	return json.JoinOptions(json.FormatNilSliceAsNull(true), json.FormatNilMapAsNull(true))
}

// read returns file's policy when it is a valid entry for key.
func read(file, key string) (*policy.Policy, bool) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG ||
		int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 || st.Size > maxEntry {
		return nil, false
	}
	data := make([]byte, st.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, false
	}
	header, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, false
	}
	sum := sha256.Sum256(body)
	if string(header) != format+" "+key+" "+hex.EncodeToString(sum[:]) {
		return nil, false
	}
	var p policy.Policy
	if err := json.Unmarshal(body, &p, encoding(), json.RejectUnknownMembers(true)); err != nil || p.Revalidate() != nil {
		return nil, false
	}
	return &p, true
}

// write leaves p's entry at file, and removes the oldest entries beyond
// maxEntries. Failing to cache is not an error: the next call parses.
func (d Dir) write(file, key string, p *policy.Policy) {
	body, err := json.Marshal(p, encoding())
	if err != nil {
		return
	}
	// The parent (ward's state directory) gets the mode the decision
	// log gives it when it comes first; the entries are for root only.
	if err := os.MkdirAll(filepath.Dir(string(d)), 0o750); err != nil {
		return
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return
	}
	sum := sha256.Sum256(body)
	data := append([]byte(format+" "+key+" "+hex.EncodeToString(sum[:])+"\n"), body...)
	if err := atomicfile.Write(file, data, 0o600, false); err != nil {
		return
	}
	d.prune(filepath.Base(file))
}

// prune removes the oldest entries beyond maxEntries, never keep.
func (d Dir) prune(keep string) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return
	}
	type aged struct {
		name string
		mod  int64
	}
	var old []aged
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || e.Name() == keep {
			continue
		}
		if info, err := e.Info(); err == nil {
			old = append(old, aged{e.Name(), info.ModTime().UnixNano()})
		}
	}
	if len(old) < maxEntries {
		return
	}
	slices.SortFunc(old, func(a, b aged) int { return int(a.mod - b.mod) })
	for _, e := range old[:len(old)-maxEntries+1] {
		os.Remove(filepath.Join(string(d), e.name))
	}
}
