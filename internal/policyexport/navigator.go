package policyexport

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ward-runtime/ward/policy"
)

// Navigator layer scores: what ward does about a technique, the strongest
// handling among the checks that find it under the policy.
const (
	scoreReport  = 1
	scoreHarden  = 2
	scoreSandbox = 3
	scoreReject  = 4
)

// Layer is an ATT&CK Navigator layer (format 4.5), the fields ward fills.
type Layer struct {
	Name         string            `json:"name"`
	Versions     map[string]string `json:"versions"`
	Domain       string            `json:"domain"`
	Description  string            `json:"description"`
	Filters      map[string]any    `json:"filters"`
	Sorting      int               `json:"sorting"`
	Layout       map[string]any    `json:"layout"`
	HideDisabled bool              `json:"hideDisabled"`
	Techniques   []Technique       `json:"techniques"`
	Gradient     map[string]any    `json:"gradient"`
	Legend       []LegendItem      `json:"legendItems"`
	ShowTactics  bool              `json:"selectTechniquesAcrossTactics"`
}

// Technique is one scored technique.
type Technique struct {
	ID string `json:"techniqueID"`
	// Score is 1 to 4; 0 (omitted) leaves the technique unscored, as the
	// format wants for a parent listed only to show its sub-technique.
	Score    int        `json:"score,omitempty"`
	Color    string     `json:"color,omitempty"`
	Comment  string     `json:"comment"`
	Enabled  bool       `json:"enabled"`
	Metadata []Metadata `json:"metadata,omitempty"`
	// ShowSubtechniques expands a parent whose sub-technique is scored.
	ShowSubtechniques bool `json:"showSubtechniques"`
}

// Metadata is a name/value pair shown with a technique.
type Metadata struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LegendItem explains a colour.
type LegendItem struct {
	Label string `json:"label"`
	Color string `json:"color"`
}

var scoreColors = map[int]string{scoreReport: "#fff3b0", scoreHarden: "#a8dadc", scoreSandbox: "#457b9d", scoreReject: "#1d3557"}

// handling is what the policy does about check id: the strictest rule
// listing it, else hardening if a step removes it, else a report.
func handling(p *policy.Policy, c *policy.Check) (int, string) {
	score, what := scoreReport, "reported"
	if c.FixedBy != "" {
		score, what = scoreHarden, "hardened (step "+c.FixedBy+")"
	}
	for _, r := range p.Rules {
		if !slices.Contains(r.Match.Findings, c.ID) {
			continue
		}
		switch {
		case r.Action == policy.Reject && score < scoreReject:
			score, what = scoreReject, "rejected (rule "+r.Name+")"
		case r.Action == policy.Sandbox && score < scoreSandbox:
			score, what = scoreSandbox, "sandboxed in "+string(r.Backend)+" (rule "+r.Name+")"
		}
	}
	return score, what
}

// NavigatorLayer scores every ATT&CK technique ward's checks find by what
// p does about it.
func NavigatorLayer(p *policy.Policy) Layer {
	type acc struct {
		score  int
		checks []string
	}
	byID := map[string]*acc{}
	for _, c := range policy.NewEvaluator(p).Checks() {
		score, what := handling(p, &c)
		for _, t := range c.Attack {
			a := byID[t]
			if a == nil {
				a = &acc{}
				byID[t] = a
			}
			a.score = max(a.score, score)
			a.checks = append(a.checks, c.ID+": "+what)
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	l := Layer{
		Name:        "ward: " + p.Source,
		Versions:    map[string]string{"attack": "16", "navigator": "5.1.0", "layer": "4.5"},
		Domain:      "enterprise-attack",
		Description: "Techniques ward's checks find in container specs, scored by what the policy does: 1 report, 2 harden, 3 sandbox, 4 reject.",
		Filters:     map[string]any{"platforms": []string{"Containers"}},
		Layout:      map[string]any{"layout": "side", "showID": true, "showName": true},
		Gradient:    map[string]any{"colors": []string{scoreColors[scoreReport], scoreColors[scoreReject]}, "minValue": 0, "maxValue": scoreReject},
		ShowTactics: true,
	}
	for _, s := range []int{scoreReject, scoreSandbox, scoreHarden, scoreReport} {
		l.Legend = append(l.Legend, LegendItem{Label: map[int]string{scoreReject: "rejected", scoreSandbox: "sandboxed", scoreHarden: "hardened", scoreReport: "reported"}[s], Color: scoreColors[s]})
	}
	for _, id := range ids {
		a := byID[id]
		slices.Sort(a.checks)
		t := Technique{ID: id, Score: a.score, Color: scoreColors[a.score], Enabled: true,
			Comment: fmt.Sprintf("%d ward check(s)", len(a.checks))}
		for _, c := range a.checks {
			name, value, _ := strings.Cut(c, ": ")
			t.Metadata = append(t.Metadata, Metadata{Name: name, Value: value})
		}
		l.Techniques = append(l.Techniques, t)
		if parent, _, ok := strings.Cut(id, "."); ok && byID[parent] == nil {
			l.Techniques = append(l.Techniques, Technique{ID: parent, Enabled: true, ShowSubtechniques: true, Comment: "see " + id})
		}
	}
	return l
}
