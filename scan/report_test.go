package scan

import (
	"bytes"
	"testing"

	"github.com/ward-runtime/ward/manifest"
)

func scanCorpus(t *testing.T) *Report {
	t.Helper()
	p, n := captureNode(t)
	s, err := New(p, n)
	if err != nil {
		t.Fatal(err)
	}
	objs, skipped, err := manifest.Read([]string{"../testdata/manifests"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	return &Report{Policy: p, Results: rs, Skipped: len(skipped), Gate: Gate{Reject: true}}
}

func TestTableSmoke(t *testing.T) {
	r := scanCorpus(t)
	var b bytes.Buffer
	if err := r.Write(&b, Table); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}
