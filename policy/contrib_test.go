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
