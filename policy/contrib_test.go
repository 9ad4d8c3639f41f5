package policy

import (
	"path/filepath"
	"testing"
)

// The sample policies shipped in contrib/ must always be valid.
func TestContribPoliciesAreValid(t *testing.T) {
	files, err := filepath.Glob("../contrib/policy/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample policies: %v", err)
	}
	for _, f := range files {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestContribSampleExtendsDefault: the sample states only differences, so
// it keeps the default's user namespaces and rules (it used to copy an old
// default whole and turn user namespaces off).
func TestContribSampleExtendsDefault(t *testing.T) {
	p, err := LoadFile("../contrib/policy/node-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p.Extends != "default" || !bool(p.Userns.Enabled) || len(p.Rules) != len(def.Rules)+1 {
		t.Errorf("extends %q, userns %v, %d rules (default %d)", p.Extends, p.Userns.Enabled, len(p.Rules), len(def.Rules))
	}
}
