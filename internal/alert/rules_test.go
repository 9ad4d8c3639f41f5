package alert

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestCatalog: IDs and names are unique, every rule has an ATT&CK id, a
// syscall belongs to one rule; docs/detection.md and the policy schema
// list every rule.
func TestCatalog(t *testing.T) {
	doc, err := os.ReadFile("../../docs/detection.md")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("../../docs/policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties struct {
			Detection struct {
				Properties struct {
					Responses struct {
						Items struct {
							Properties struct {
								Rule struct {
									Enum []string `json:"enum"`
								} `json:"rule"`
							} `json:"properties"`
						} `json:"items"`
					} `json:"responses"`
				} `json:"properties"`
			} `json:"detection"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatal(err)
	}
	enum := s.Properties.Detection.Properties.Responses.Items.Properties.Rule.Enum
	ids, names, calls := map[string]bool{}, map[string]bool{}, map[string]string{}
	for _, r := range Catalog() {
		if ids[r.ID] || names[r.Name] {
			t.Errorf("rule %s: duplicate ID or name", r.ID)
		}
		ids[r.ID], names[r.Name] = true, true
		if !slices.ContainsFunc(r.Tags, func(tag string) bool { return strings.HasPrefix(tag, "T") && len(tag) >= 5 }) {
			t.Errorf("rule %s has no ATT&CK technique", r.ID)
		}
		for _, c := range r.Syscalls {
			if other, ok := calls[c]; ok {
				t.Errorf("%s is in rules %s and %s", c, other, r.ID)
			}
			calls[c] = r.ID
		}
		if !strings.Contains(string(doc), "| `"+r.ID+"` | "+r.Name+" |") {
			t.Errorf("docs/detection.md does not list rule %s (%s)", r.ID, r.Name)
		}
		if !slices.Contains(enum, r.ID) {
			t.Errorf("docs/policy.schema.json detection.responses[].rule does not list %s", r.ID)
		}
	}
	if len(enum) != len(ids) {
		t.Errorf("schema lists %d rules, the catalog %d", len(enum), len(ids))
	}
}
