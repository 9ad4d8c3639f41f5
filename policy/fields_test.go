package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// coverage walks specs.Spec by reflection and returns every field with no
// entry (or an empty one) in table, every entry that names an unknown
// check, the entries no field used, and how many fields it walked.
func coverage(table map[string]fieldJudgement) (problems []string, walked int) {
	known := knownIDs()
	used := map[string]bool{}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map || typ.Kind() == reflect.Array {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := typ.Name() + "." + f.Name
			j, ok := table[key]
			used[key] = true
			switch {
			case !ok:
				problems = append(problems, "spec field "+key+" ("+f.Type.String()+") is not judged: add a check, or a harmless entry saying why, to fieldJudgements")
				continue
			case len(j.checks) == 0 && strings.TrimSpace(j.harmless) == "":
				problems = append(problems, key+": an entry needs checks or a reason")
			}
			for _, id := range j.checks {
				if !known[id] {
					problems = append(problems, key+": unknown check "+id)
				}
			}
			if !j.subtree {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(specs.Spec{}))
	for key := range table {
		if !used[key] {
			problems = append(problems, "fieldJudgements has "+key+", which specs.Spec does not: remove it")
		}
	}
	slices.Sort(problems)
	return problems, len(used)
}

// TestEveryFieldJudged: every field of specs.Spec, at any depth, has a
// check or a reasoned "harmless" entry, and every check named exists. A
// runtime-spec upgrade that adds a field fails here until someone judges
// it.
func TestEveryFieldJudged(t *testing.T) {
	problems, walked := coverage(fieldJudgements())
	for _, p := range problems {
		t.Error(p)
	}
	if walked < 180 {
		t.Errorf("walked only %d fields: the walk is broken", walked)
	}
	t.Logf("%d spec fields judged", walked)
}

// TestCoverageNoticesUnjudgedField: the walk reports a field whose entry
// is missing, at depth, and one whose entry has no reason.
func TestCoverageNoticesUnjudgedField(t *testing.T) {
	table := fieldJudgements()
	delete(table, "LinuxSeccompArg.ValueTwo")
	table["Hook.Timeout"] = fieldJudgement{}
	problems, _ := coverage(table)
	if len(problems) != 2 || !strings.Contains(problems[0], "Hook.Timeout") || !strings.Contains(problems[1], "LinuxSeccompArg.ValueTwo") {
		t.Errorf("problems = %q", problems)
	}
}
