package recordfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "recs"), Perm: 0o640, What: "test record", Max: 1 << 10}
	type rec struct{ A string }
	if err := d.Read("x", &rec{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing record: %v", err)
	}
	if ids, err := d.IDs(); err != nil || len(ids) != 0 {
		t.Fatalf("no directory: %v %v", ids, err)
	}
	if err := d.Write("x", rec{"1"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.Path); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("directory mode %v %v", fi.Mode(), err)
	}
	var got rec
	if err := d.Read("x", &got); err != nil || got.A != "1" {
		t.Fatalf("read %+v %v", got, err)
	}
	os.WriteFile(filepath.Join(d.Path, "notes.txt"), nil, 0o600)
	if ids, _ := d.IDs(); !slices.Equal(ids, []string{"x"}) {
		t.Errorf("IDs %v", ids)
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b"} {
		if err := d.Write(bad, rec{}); err == nil {
			t.Errorf("id %q accepted", bad)
		}
	}
	if err := d.Remove("x"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("x"); err != nil {
		t.Errorf("removing a missing record: %v", err)
	}
	os.WriteFile(filepath.Join(d.Path, "big.json"), make([]byte, 2<<10), 0o600)
	if err := d.Read("big", &got); err == nil {
		t.Error("an oversized record was read")
	}
}
