package manifest

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"yaml", "apiVersion: v1\nkind: Pod\nmetadata: [\n", "bad.yaml: document 1"},
		{"type", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: \"yes\"\n  containers: [{name: a, image: b}]\n", "bad.yaml:5:3: Pod: field spec.hostPID"},
		{"no containers", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec: {}\n", "bad.yaml:6:5: Deployment d: spec.template.spec.containers has no containers"},
		{"not a mapping", "- a\n- b\n", "bad.yaml:1: document 1 is not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("bad.yaml", []byte(tt.doc))
			var me *Error
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an *Error containing %q", err, tt.want)
			}
		})
	}
}

func TestMissingVolumeNamesTheField(t *testing.T) {
	doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      image: b\n      volumeMounts: [{name: nope, mountPath: /x}]\n"
	objs, _, err := Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Translate(&objs[0], Node{KubeletRoot: "/var/lib/kubelet"})
	if err == nil || !strings.Contains(err.Error(), `spec.containers[0].volumeMounts[0]: no volume named "nope"`) {
		t.Fatalf("got %v", err)
	}
}

func TestPositionAndHelmSource(t *testing.T) {
	doc := `---
# Source: chart/templates/a.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
# Source: chart/templates/b.yaml
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: d
spec:
  template:
    spec:
      hostPID: true
      containers:
        - name: a
          image: b
          securityContext:
            privileged: true
`
	objs, skipped, err := Parse("r.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || len(skipped) != 1 || skipped[0].Kind != "ConfigMap" {
		t.Fatalf("objects %d, skipped %+v", len(objs), skipped)
	}
	o := &objs[0]
	if o.Source != "chart/templates/b.yaml" || o.Line != 8 {
		t.Errorf("source %q line %d", o.Source, o.Line)
	}
	for field, want := range map[string]int{
		o.Field("hostPID"): 15,
		o.Field("containers[0].securityContext.privileged"): 20,
		// Absent: its closest ancestor.
		o.Field("containers[0].securityContext.capabilities.add"): 19,
		o.Field("hostNetwork"): 14,
	} {
		if line, _ := o.Position(field); line != want {
			t.Errorf("%s: line %d, want %d", field, line, want)
		}
	}
}

func TestReadStdin(t *testing.T) {
	objs, _, err := Read([]string{"-"}, strings.NewReader("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n"))
	if err != nil || len(objs) != 1 || objs[0].File != "-" {
		t.Fatalf("%v %+v", err, objs)
	}
}

// FuzzParse: no input makes reading or translating a manifest panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n",
		"kind: Deployment\nspec: {template: {spec: {hostPID: true, volumes: [{name: v, hostPath: {path: /}}], containers: [{name: a, volumeMounts: [{name: v, mountPath: /h, subPath: x}], securityContext: {privileged: true, capabilities: {add: [ALL], drop: [ALL]}}}]}}}\n",
		"kind: CronJob\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a}]}}}}}\n---\n---\n# c\n",
		"kind: StatefulSet\nspec: {volumeClaimTemplates: [{metadata: {name: d}}], template: {spec: {containers: [{name: a, volumeMounts: [{name: d, mountPath: /d}]}]}}}\n",
		"&a {kind: Pod, spec: *a}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _, err := Parse("f.yaml", data)
		if err != nil {
			return
		}
		for i := range objs {
			o := &objs[i]
			o.Position(o.Field("containers[0].securityContext.privileged"))
			if _, err := Translate(o, Node{KubeletRoot: "/var/lib/kubelet", PodAnnotations: []string{"ward.dev/*"}}); err != nil {
				continue
			}
		}
	})
}
