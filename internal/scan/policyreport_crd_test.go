package scan

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// kyvernoModule is the release whose published wgpolicyk8s.io CRD the
// PolicyReport is checked against, and whose CLI integration/kyverno
// builds (keep the two equal). The working group's own module
// (sigs.k8s.io/wg-policy-prototypes) is not served by the module proxy;
// Kyverno, the report's main producer, publishes the CRD in its module.
const kyvernoModule = "github.com/kyverno/kyverno@v1.19.1"

// moduleDir downloads mod (module@version) through the module proxy into
// the module cache, as `go mod download` does, and returns its directory.
// The module is not a dependency of ward: requiring it would move pinned
// libraries (cel-go among them) to Kyverno's versions.
func moduleDir(t *testing.T, mod string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to fetch %s: %v", mod, err)
	}
	cmd := exec.Command(gobin, "mod", "download", "-json", mod)
	cmd.Dir = t.TempDir() // outside ward's module: its go.sum stays as it is
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.Output()
	var dl struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &dl); err != nil || jerr != nil || dl.Error != "" || dl.Dir == "" {
		t.Fatalf("go mod download %s: %v %s %s", mod, err, dl.Error, out)
	}
	return dl.Dir
}

// crdValidator is what kube-apiserver applies to a custom resource of one
// CRD version on create: pruning of unknown fields, ObjectMeta coercion,
// the OpenAPI v3 schema, list types, and ObjectMeta validation.
type crdValidator struct {
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaCreateValidator
}

func loadCRD(t *testing.T, path, version string) *crdValidator {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&crd); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			t.Fatalf("%s %s has no schema", crd.Name, version)
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			t.Fatal(err)
		}
		ss, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatalf("%s %s: not a structural schema: %v", crd.Name, version, err)
		}
		sv, _, err := apiservervalidation.NewSchemaValidator(&internal)
		if err != nil {
			t.Fatal(err)
		}
		return &crdValidator{structural: ss, schema: sv}
	}
	t.Fatalf("%s has no version %s", crd.Name, version)
	return nil
}

// validate returns what the API server would refuse in obj, and the
// fields it would silently drop (unknown to the schema), each as a path.
func (v *crdValidator) validate(obj map[string]any) (field.ErrorList, []string) {
	pruned := pruning.PruneWithOptions(obj, v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	var errs field.ErrorList
	if err := objectmeta.Coerce(nil, obj, v.structural, true, false); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, v.schema)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, v.structural, obj)...)
	meta, _, err := objectmeta.GetObjectMeta(obj, false)
	if err != nil {
		errs = append(errs, field.Invalid(field.NewPath("metadata"), nil, err.Error()))
	} else {
		errs = append(errs, metavalidation.ValidateObjectMeta(meta, true, metavalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	}
	return errs, pruned
}

func policyReportValidator(t *testing.T) *crdValidator {
	t.Helper()
	dir := moduleDir(t, kyvernoModule)
	return loadCRD(t, filepath.Join(dir, "config", "crds", "policyreport", "wgpolicyk8s.io_policyreports.yaml"), "v1alpha2")
}

// asCreated is the report as `kubectl apply -n NS` sends it: the
// namespace comes from the request.
func asCreated(t *testing.T, r *Report) map[string]any {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b, PolicyReport); err != nil {
		t.Fatal(err)
	}
	// Decoded as the API server decodes a custom resource: integers as
	// int64, not float64.
	var obj map[string]any
	if err := utiljson.Unmarshal(b.Bytes(), &obj); err != nil {
		t.Fatal(err)
	}
	obj["metadata"].(map[string]any)["namespace"] = "ci"
	return obj
}

// TestPolicyReportValidatesAgainstCRD checks the PolicyReport over the
// whole corpus as kube-apiserver checks a custom resource on create, with
// the API server's own validation library (k8s.io/apiextensions-apiserver,
// of the Kubernetes release of ward's k8s.io/api) against the OpenAPI v3
// schema of the wgpolicyk8s.io/v1alpha2 PolicyReport CRD that Kyverno
// publishes: nothing refused, nothing pruned as unknown.
func TestPolicyReportValidatesAgainstCRD(t *testing.T) {
	v := policyReportValidator(t)
	r := scanCorpus(t)
	obj := asCreated(t, r)
	want := deepCopyJSON(t, obj)
	errs, pruned := v.validate(obj)
	for _, e := range errs {
		t.Errorf("refused: %v", e)
	}
	if len(pruned) > 0 {
		t.Errorf("fields unknown to the CRD, dropped by the API server: %v", pruned)
	}
	if !reflect.DeepEqual(obj, want) {
		t.Error("the API server's pruning and coercion changed the report")
	}
	if api, kind := obj["apiVersion"], obj["kind"]; api != "wgpolicyk8s.io/v1alpha2" || kind != "PolicyReport" {
		t.Errorf("%v %v", api, kind)
	}
	results := obj["results"].([]any)
	counts := map[string]int{}
	for _, x := range results {
		counts[x.(map[string]any)["result"].(string)]++
	}
	s := obj["summary"].(map[string]any)
	for _, k := range []string{"pass", "fail", "warn", "skip"} {
		if s[k] != int64(counts[k]) {
			t.Errorf("summary.%s = %v, counted %d", k, s[k], counts[k])
		}
	}
	t.Logf("%d results (%v), valid against %s's wgpolicyk8s.io/v1alpha2 CRD", len(results), counts, kyvernoModule)
}

// TestPolicyReportValidatorRefuses proves the check above can fail: a
// result outside the CRD's enum, a wrongly typed field, a missing required
// one, an unknown one and a bad name are each caught.
func TestPolicyReportValidatorRefuses(t *testing.T) {
	v := policyReportValidator(t)
	good := asCreated(t, scanDir(t, manifestsDir+"/helm"))
	cases := map[string]func(obj map[string]any){
		"result enum":   func(o map[string]any) { result(o)["result"] = "rejected" },
		"severity enum": func(o map[string]any) { result(o)["severity"] = "severe" },
		"scored type":   func(o map[string]any) { result(o)["scored"] = "yes" },
		"policy":        func(o map[string]any) { delete(result(o), "policy") },
		"unknown field": func(o map[string]any) { result(o)["container"] = "app" },
		"name":          func(o map[string]any) { o["metadata"].(map[string]any)["name"] = "Ward Scan" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			obj := deepCopyJSON(t, good)
			edit(obj)
			errs, pruned := v.validate(obj)
			if len(errs) == 0 && len(pruned) == 0 {
				t.Error("accepted")
			}
			t.Logf("%v %v", errs, pruned)
		})
	}
	if errs, pruned := v.validate(deepCopyJSON(t, good)); len(errs)+len(pruned) > 0 {
		t.Errorf("the unedited report is refused: %v %v", errs, pruned)
	}
}

func result(obj map[string]any) map[string]any {
	return obj["results"].([]any)[0].(map[string]any)
}

func deepCopyJSON(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := utiljson.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
