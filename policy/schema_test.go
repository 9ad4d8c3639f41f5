package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaPath = "../docs/policy.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJSON turns a YAML document into the JSON value a schema validates.
func asJSON(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsShippedPolicies: the published schema accepts the
// embedded default and the contrib sample, and refuses what Parse refuses
// for the same reason (a quoted boolean, an unknown field, a '?' glob).
func TestSchemaAcceptsShippedPolicies(t *testing.T) {
	s := compileSchema(t)
	sample, err := os.ReadFile("../contrib/policy/node-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string][]byte{"default": DefaultYAML(), "contrib sample": sample, "test policy": []byte(validPolicy)} {
		if err := s.Validate(asJSON(t, doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, doc := range map[string]string{
		"quoted boolean":      validPolicy + "userns:\n  enabled: \"false\"\n",
		"unknown field":       validPolicy + "colour: blue\n",
		"glob with ?":         validPolicy + "untrusted:\n  namespaces:\n    - ci-?\n",
		"sandbox, no backend": strings.Replace(validPolicy, "action: reject", "action: sandbox", 1),
	} {
		if err := s.Validate(asJSON(t, []byte(doc))); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
		if _, err := Parse([]byte(doc), "x"); err == nil {
			t.Errorf("%s: Parse accepts it", name)
		}
	}
}

// TestSchemaNamesEveryField: every field the policy file can hold is a
// property in the schema, so the schema cannot fall behind the code.
func TestSchemaNamesEveryField(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	schema := string(data)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(rt reflect.Type, at string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if !strings.Contains(schema, `"`+tag+`": {`) {
				t.Errorf("%s.%s (%s) is not in %s", at, tag, rt.Name(), schemaPath)
			}
			walk(f.Type, at+"."+tag)
		}
	}
	walk(reflect.TypeOf(Policy{}), "policy")
}
