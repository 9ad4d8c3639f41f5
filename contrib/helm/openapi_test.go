package helm_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// openAPI validates objects against Kubernetes' own OpenAPI (v2) schema,
// the swagger.json of the k8s.io/kubernetes module (make test-helm finds it
// with `go mod download`), as kubeconform does in strict mode: every
// definition refuses properties it does not list, and the two types that
// take a number or a string (IntOrString, Quantity) take both.
type openAPI struct {
	compiler *jsonschema.Compiler
	// byGVK is the definition name of each group/version/kind.
	byGVK   map[string]string
	schemas map[string]*jsonschema.Schema
}

func loadOpenAPI(t *testing.T, path string) *openAPI {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	root, _ := doc.(map[string]any)
	defs, _ := root["definitions"].(map[string]any)
	if len(defs) == 0 {
		t.Fatalf("%s: no definitions", path)
	}
	o := &openAPI{byGVK: map[string]string{}, schemas: map[string]*jsonschema.Schema{}}
	for name, d := range defs {
		def := d.(map[string]any)
		if _, ok := def["properties"]; ok {
			if _, set := def["additionalProperties"]; !set {
				def["additionalProperties"] = false
			}
		}
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			m := g.(map[string]any)
			o.byGVK[gvk(fmt.Sprint(m["group"]), fmt.Sprint(m["version"]), fmt.Sprint(m["kind"]))] = name
		}
	}
	numberOrString := map[string]any{"type": []any{"string", "integer", "number"}}
	defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = numberOrString
	defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = numberOrString
	o.compiler = jsonschema.NewCompiler()
	o.compiler.DefaultDraft(jsonschema.Draft4)
	if err := o.compiler.AddResource("k8s.json", map[string]any{"definitions": defs}); err != nil {
		t.Fatal(err)
	}
	return o
}

func gvk(group, version, kind string) string {
	if group == "" {
		return version + "/" + kind
	}
	return group + "/" + version + "/" + kind
}

// check validates one YAML document; known is false for a kind the schema
// does not have (a custom resource).
func (o *openAPI) check(doc []byte) (known bool, err error) {
	js, err := utilyaml.ToJSON(doc)
	if err != nil {
		return true, err
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(js)))
	if err != nil {
		return true, err
	}
	var head struct{ APIVersion, Kind string }
	json.Unmarshal(js, &head)
	group, version, ok := strings.Cut(head.APIVersion, "/")
	if !ok {
		group, version = "", head.APIVersion
	}
	name := o.byGVK[gvk(group, version, head.Kind)]
	if name == "" {
		return false, nil
	}
	sch := o.schemas[name]
	if sch == nil {
		if sch, err = o.compiler.Compile("k8s.json#/definitions/" + name); err != nil {
			return true, fmt.Errorf("compiling %s: %w", name, err)
		}
		o.schemas[name] = sch
	}
	if err := sch.Validate(inst); err != nil {
		return true, fmt.Errorf("against %s: %w", name, err)
	}
	return true, nil
}
