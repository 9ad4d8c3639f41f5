package policyexport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/ward-runtime/ward/policy"
)

// The ATT&CK Navigator layer format, version 4.5, as its definition
// states it (layers/spec/v4.5/layerformat.md in
// github.com/mitre-attack/attack-navigator, read at commit
// 068cf4e889a61b6f40a8c9d6f190ae3debdc8ab5). MITRE publishes no machine
// schema for it, so the check is a strict decode into these types
// (unknown fields refused) and navLayer.validate for what the definition
// requires: pointers are the fields whose presence is checked.
type navLayer struct {
	Versions                      *navVersions    `json:"versions"`
	Name                          *string         `json:"name"`
	Description                   string          `json:"description"`
	Domain                        *string         `json:"domain"`
	CustomDataURL                 string          `json:"customDataURL"`
	Filters                       *navFilters     `json:"filters"`
	Sorting                       *float64        `json:"sorting"`
	Layout                        *navLayout      `json:"layout"`
	HideDisabled                  bool            `json:"hideDisabled"`
	Techniques                    []navTechnique  `json:"techniques"`
	Gradient                      *navGradient    `json:"gradient"`
	LegendItems                   []navLegendItem `json:"legendItems"`
	ShowTacticRowBackground       bool            `json:"showTacticRowBackground"`
	TacticRowBackground           string          `json:"tacticRowBackground"`
	SelectTechniquesAcrossTactics *bool           `json:"selectTechniquesAcrossTactics"`
	SelectSubtechniquesWithParent *bool           `json:"selectSubtechniquesWithParent"`
	SelectVisibleTechniques       *bool           `json:"selectVisibleTechniques"`
	Metadata                      []navMetadata   `json:"metadata"`
	Links                         []navLink       `json:"links"`
}

type navVersions struct {
	Attack    string  `json:"attack"`
	Navigator *string `json:"navigator"`
	Layer     *string `json:"layer"`
}

type navFilters struct {
	Platforms []string `json:"platforms"`
}

type navLayout struct {
	Layout                string `json:"layout"`
	ShowID                bool   `json:"showID"`
	ShowName              bool   `json:"showName"`
	ShowAggregateScores   bool   `json:"showAggregateScores"`
	CountUnscored         bool   `json:"countUnscored"`
	AggregateFunction     string `json:"aggregateFunction"`
	ExpandedSubtechniques string `json:"expandedSubtechniques"`
}

type navTechnique struct {
	TechniqueID       *string       `json:"techniqueID"`
	Tactic            string        `json:"tactic"`
	Comment           string        `json:"comment"`
	Enabled           *bool         `json:"enabled"`
	Score             *float64      `json:"score"`
	Color             string        `json:"color"`
	Metadata          []navMetadata `json:"metadata"`
	Links             []navLink     `json:"links"`
	ShowSubtechniques bool          `json:"showSubtechniques"`
}

type navGradient struct {
	Colors   []string `json:"colors"`
	MinValue *float64 `json:"minValue"`
	MaxValue *float64 `json:"maxValue"`
}

type navLegendItem struct {
	Label *string `json:"label"`
	Color *string `json:"color"`
}

// navMetadata is a Metadata object (name and value) or a Divider object.
type navMetadata struct {
	Name    *string `json:"name"`
	Value   *string `json:"value"`
	Divider *bool   `json:"divider"`
}

type navLink struct {
	Label   *string `json:"label"`
	URL     *string `json:"url"`
	Divider *bool   `json:"divider"`
}

var (
	navTechniqueID = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	navColor       = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	navVersion     = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)
)

// navPlatforms are the definition's enterprise-attack platforms, and
// Containers: an enterprise platform since ATT&CK v9, which the
// definition's list predates and the Navigator offers from the domain's
// data.
var navPlatforms = []string{"PRE", "Windows", "Linux", "macOS", "Network", "AWS", "GCP", "Azure", "Azure AD", "Office 365", "SaaS", "Containers"}

func decodeLayer(data []byte) (*navLayer, error) {
	var l navLayer
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, err
	}
	return &l, nil
}

func (l *navLayer) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if l.Name == nil || *l.Name == "" {
		bad("name is required")
	}
	if l.Domain == nil || !slices.Contains([]string{"enterprise-attack", "mobile-attack", "ics-attack"}, *l.Domain) {
		bad("domain must be enterprise-attack, mobile-attack or ics-attack")
	}
	if v := l.Versions; v != nil {
		if v.Layer == nil || *v.Layer != "4.5" {
			bad("versions.layer must be \"4.5\"")
		}
		if m := navVersion.FindStringSubmatch(deref(v.Navigator)); m == nil || atoi(m[1])*1000+atoi(m[2]) < 4009 {
			bad("versions.navigator %q must be at least 4.9.0", deref(v.Navigator))
		}
	}
	if f := l.Filters; f != nil && l.Domain != nil && *l.Domain == "enterprise-attack" {
		for _, p := range f.Platforms {
			if !slices.Contains(navPlatforms, p) {
				bad("filters.platforms: %q is not an enterprise-attack platform", p)
			}
		}
	}
	if l.Sorting != nil && !slices.Contains([]float64{0, 1, 2, 3}, *l.Sorting) {
		bad("sorting %v", *l.Sorting)
	}
	if lo := l.Layout; lo != nil {
		if lo.Layout != "" && !slices.Contains([]string{"side", "flat", "mini"}, lo.Layout) {
			bad("layout.layout %q", lo.Layout)
		}
		if lo.AggregateFunction != "" && !slices.Contains([]string{"average", "min", "max", "sum"}, lo.AggregateFunction) {
			bad("layout.aggregateFunction %q", lo.AggregateFunction)
		}
		if lo.ExpandedSubtechniques != "" && !slices.Contains([]string{"none", "all", "annotated"}, lo.ExpandedSubtechniques) {
			bad("layout.expandedSubtechniques %q", lo.ExpandedSubtechniques)
		}
	}
	if g := l.Gradient; g != nil {
		if len(g.Colors) < 2 || g.MinValue == nil || g.MaxValue == nil || *g.MaxValue <= *g.MinValue {
			bad("gradient needs two colors and minValue < maxValue")
		}
		for _, c := range g.Colors {
			if !navColor.MatchString(c) {
				bad("gradient color %q is not #RRGGBB", c)
			}
		}
	}
	for i, li := range l.LegendItems {
		if li.Label == nil || li.Color == nil {
			bad("legendItems[%d] needs label and color", i)
		}
	}
	for _, t := range l.Techniques {
		id := deref(t.TechniqueID)
		if !navTechniqueID.MatchString(id) {
			bad("techniqueID %q", id)
		}
		if t.Color != "" && !navColor.MatchString(t.Color) {
			bad("%s: color %q", id, t.Color)
		}
		if t.Score != nil && l.Gradient != nil && (*t.Score < *l.Gradient.MinValue || *t.Score > *l.Gradient.MaxValue) {
			bad("%s: score %v outside the gradient", id, *t.Score)
		}
		for i, m := range t.Metadata {
			if (m.Divider == nil) == (m.Name == nil || m.Value == nil) {
				bad("%s: metadata[%d] must be a name and value, or a divider", id, i)
			}
		}
	}
	return errs
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func layerJSON(t *testing.T, p *policy.Policy) []byte {
	t.Helper()
	data, err := json.Marshal(NavigatorLayer(p))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestNavigatorLayerValidates checks the layer of the default and the
// strict test policy against the layer format 4.5, and what it scores.
func TestNavigatorLayerValidates(t *testing.T) {
	def, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	strict, err := policy.Load("testdata/strict-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*policy.Policy{def, strict} {
		l, err := decodeLayer(layerJSON(t, p))
		if err != nil {
			t.Fatalf("%s: %v", p.Source, err)
		}
		for _, err := range l.validate() {
			t.Errorf("%s: %v", p.Source, err)
		}
		scored := 0
		for _, tq := range l.Techniques {
			if tq.Score != nil {
				scored++
			} else if !tq.ShowSubtechniques {
				t.Errorf("%s is listed unscored, but not as the parent of a scored sub-technique", *tq.TechniqueID)
			}
		}
		t.Logf("%s: %d techniques, %d scored: valid layer 4.5", p.Source, len(l.Techniques), scored)
	}
	scores := map[string]float64{}
	l, _ := decodeLayer(layerJSON(t, def))
	for _, tq := range l.Techniques {
		if tq.Score != nil {
			scores[*tq.TechniqueID] = *tq.Score
		}
	}
	// Escape to Host: the default policy rejects the privileged shape.
	if scores["T1611"] != scoreReject {
		t.Errorf("T1611 scored %v, want %d (reject)", scores["T1611"], scoreReject)
	}
	// Rootkit: CAP_SYS_MODULE and CAP_BPF go to gVisor.
	if scores["T1014"] != scoreSandbox {
		t.Errorf("T1014 scored %v, want %d (sandbox)", scores["T1014"], scoreSandbox)
	}
}

// TestNavigatorValidatorRefuses proves the check can fail.
func TestNavigatorValidatorRefuses(t *testing.T) {
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(m map[string]any){
		"no name":       func(m map[string]any) { delete(m, "name") },
		"layer version": func(m map[string]any) { m["versions"].(map[string]any)["layer"] = "4.4" },
		"old navigator": func(m map[string]any) { m["versions"].(map[string]any)["navigator"] = "4.8.2" },
		"domain":        func(m map[string]any) { m["domain"] = "containers" },
		"unknown field": func(m map[string]any) { m["score"] = 3 },
		"technique id":  func(m map[string]any) { m["techniques"].([]any)[0].(map[string]any)["techniqueID"] = "T16" },
		"score range":   func(m map[string]any) { m["techniques"].([]any)[0].(map[string]any)["score"] = 9 },
		"metadata value": func(m map[string]any) {
			delete(m["techniques"].([]any)[0].(map[string]any)["metadata"].([]any)[0].(map[string]any), "value")
		},
		"gradient":         func(m map[string]any) { m["gradient"].(map[string]any)["maxValue"] = 0 },
		"legend item":      func(m map[string]any) { delete(m["legendItems"].([]any)[0].(map[string]any), "color") },
		"platform":         func(m map[string]any) { m["filters"].(map[string]any)["platforms"] = []any{"Kubernetes"} },
		"technique fields": func(m map[string]any) { m["techniques"].([]any)[0].(map[string]any)["id"] = "T1611" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(layerJSON(t, p), &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			data, _ := json.Marshal(m)
			l, err := decodeLayer(data)
			if err == nil && len(l.validate()) == 0 {
				t.Error("accepted")
			}
		})
	}
}
