package policycache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ward-runtime/ward/policy"
)

// policies are the repository's policy files besides the embedded default.
var policies = []string{
	"../../contrib/packaging/policy.yaml",
	"../../contrib/policy/node-policy.yaml",
	"../../internal/policyexport/testdata/strict-policy.yaml",
}

// TestRoundTrip: an entry decodes to exactly the policy the parse gave,
// for the default and every policy file in the repository.
func TestRoundTrip(t *testing.T) {
	for _, path := range append([]string{""}, policies...) {
		want, err := policy.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		d := Dir(t.TempDir())
		first, err := d.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		second, err := d.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(first, want) || !reflect.DeepEqual(second, want) {
			t.Errorf("%s: cached policy differs from the parsed one:\n%+v\n%+v", path, second, want)
		}
		if n := entries(t, d); n != 1 {
			t.Errorf("%s: %d entries, want 1", path, n)
		}
	}
}

func entries(t *testing.T, d Dir) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(string(d), "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// entryFile is the one entry in d.
func entryFile(t *testing.T, d Dir) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(string(d), "*.json"))
	if len(m) != 1 {
		t.Fatalf("%d entries, want 1", len(m))
	}
	return m[0]
}

// rewrite replaces the body of file's entry with edit's result, with a
// valid header: what a hit then returns is the file's policy.
func rewrite(t *testing.T, file string, edit func(*policy.Policy)) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := bytes.Cut(data, []byte{'\n'})
	var p policy.Policy
	if err := json.Unmarshal(body, &p, encoding()); err != nil {
		t.Fatal(err)
	}
	edit(&p)
	body, err = json.Marshal(&p, encoding())
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(header))
	sum := sha256.Sum256(body)
	out := append([]byte(f[0]+" "+f[1]+" "+hex.EncodeToString(sum[:])+"\n"), body...)
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHitServesEntry shows that a valid entry is what Load returns (no
// parse), and that every check sends a damaged or foreign entry back to
// the parse.
func TestHitServesEntry(t *testing.T) {
	marked := func(p *policy.Policy) { p.Source = "from the cache" }
	cases := []struct {
		name string
		// spoil changes the marked entry; nil leaves it valid.
		spoil   func(t *testing.T, file string)
		fromHit bool
	}{
		{name: "valid entry", fromHit: true},
		{name: "body changed", spoil: func(t *testing.T, file string) { replace(t, file, "from the cache", "from the cachE") }},
		{name: "other key in header", spoil: func(t *testing.T, file string) { replace(t, file, " ", " 0") }},
		{name: "other format", spoil: func(t *testing.T, file string) { replace(t, file, format, "ward-policy-cache/0") }},
		{name: "truncated", spoil: func(t *testing.T, file string) { truncate(t, file) }},
		{name: "writable by others", spoil: func(t *testing.T, file string) { chmod(t, file, 0o622) }},
		{name: "symbolic link", spoil: func(t *testing.T, file string) { symlinked(t, file) }},
		{name: "unknown member", spoil: func(t *testing.T, file string) { replace(t, file, `{"APIVersion"`, `{"Planted":1,"APIVersion"`) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Dir(t.TempDir())
			if _, err := d.Load(""); err != nil {
				t.Fatal(err)
			}
			file := entryFile(t, d)
			rewrite(t, file, marked)
			if c.spoil != nil {
				c.spoil(t, file)
			}
			p, err := d.Load("")
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Source == "from the cache"; got != c.fromHit {
				t.Fatalf("served from the entry: %v, want %v", got, c.fromHit)
			}
			if !c.fromHit {
				// The parse's result, and a valid entry again.
				if p.Source != policy.DefaultSource {
					t.Errorf("Source %q", p.Source)
				}
				if again, err := d.Load(""); err != nil || !reflect.DeepEqual(again, p) {
					t.Errorf("entry not rewritten: %v", err)
				}
			}
		})
	}
}

func replace(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%q not in the entry", old)
	}
	if err := os.WriteFile(file, bytes.Replace(data, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, file string) {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, st.Size()-10); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, file string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
}

// symlinked moves the entry elsewhere and links it back: a planted link
// could point anywhere.
func symlinked(t *testing.T, file string) {
	t.Helper()
	elsewhere := filepath.Join(t.TempDir(), "entry")
	if err := os.Rename(file, elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, file); err != nil {
		t.Fatal(err)
	}
}

// TestChangedPolicyIsNeverStale: a policy file edited between two calls
// is parsed again, whatever the cache holds for its old content; an
// invalid edit is refused with the parser's own error, not served from
// the old entry.
func TestChangedPolicyIsNeverStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	audit := []byte("extends: default\nmode: audit\n")
	if err := os.WriteFile(path, audit, 0o644); err != nil {
		t.Fatal(err)
	}
	d := Dir(filepath.Join(dir, "cache"))
	p, err := d.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != policy.Audit {
		t.Fatalf("mode %q", p.Mode)
	}
	if err := os.WriteFile(path, []byte("extends: default\nmode: enforce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err = d.Load(path); err != nil || p.Mode != policy.Enforce {
		t.Fatalf("after the edit: mode %q, %v", p.Mode, err)
	}
	if err := os.WriteFile(path, []byte("extends: default\nmode: sometimes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = d.Load(path)
	_, want := policy.LoadFile(path)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("invalid policy: got %v, want %v", err, want)
	}
	// Back to the first content: its entry is still valid and used.
	if err := os.WriteFile(path, audit, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err = d.Load(path); err != nil || p.Mode != policy.Audit {
		t.Fatalf("back to audit: mode %q, %v", p.Mode, err)
	}
	if n := entries(t, d); n != 2 {
		t.Errorf("%d entries, want 2 (no entry for the invalid policy)", n)
	}
}

// TestKeyCoversInputs: the key changes with the bytes and the name.
func TestKeyCoversInputs(t *testing.T) {
	a := Key([]byte("mode: audit\n"), "/etc/ward/policy.yaml")
	for _, other := range []string{
		Key([]byte("mode: audit \n"), "/etc/ward/policy.yaml"),
		Key([]byte("mode: audit\n"), "/etc/ward/other.yaml"),
		Key([]byte("mode: audit\n/etc/ward/policy.yaml"), ""),
	} {
		if other == a {
			t.Errorf("same key for other inputs")
		}
	}
	if Key([]byte("mode: audit\n"), "/etc/ward/policy.yaml") != a {
		t.Error("key not stable")
	}
}

// TestPrune keeps at most maxEntries entries.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	d := Dir(filepath.Join(dir, "cache"))
	path := filepath.Join(dir, "policy.yaml")
	for i := range maxEntries + 5 {
		body := "extends: default\n" + strings.Repeat("#\n", i)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Load(path); err != nil {
			t.Fatal(err)
		}
	}
	if n := entries(t, d); n != maxEntries {
		t.Errorf("%d entries, want %d", n, maxEntries)
	}
}

// TestNoDir caches nothing.
func TestNoDir(t *testing.T) {
	p, err := Dir("").Load("")
	want, _ := policy.Default()
	if err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("%v", err)
	}
}

// BenchmarkParse is what every ward-runtime call paid before: the embedded
// default policy's YAML parsed and validated.
func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := policy.Load(""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCached is what it pays with the cache: key, entry read and
// checked, JSON decoded, policy validated again.
func BenchmarkCached(b *testing.B) {
	d := Dir(b.TempDir())
	if _, err := d.Load(""); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.Load(""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestModes: the entries' directory is the caller's alone, and a state
// directory the cache creates gets the decision log's mode.
func TestModes(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	d := Dir(filepath.Join(state, "policy-cache"))
	if _, err := d.Load(""); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{state: 0o750, string(d): 0o700, entryFile(t, d): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}
