// Package manifest reads Kubernetes workload manifests and translates each
// pod template into what a node's container runtime would be handed for
// it: the sandbox spec and one OCI spec per container, built the way
// containerd 2.4's CRI plugin builds them from what the kubelet sends. ward
// judges those specs with the same judge and policy as on the node, so a
// manifest gets the verdict its pod would get at ContainerCreating.
//
// What only the node knows (the image's user and working directory, the
// kubelet's seccomp default) is not guessed silently: the translation
// judges the worst case and records an Assumption that says so.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// MaxFileSize bounds one manifest file (or stdin): rendered charts of
// hundreds of objects fit many times over.
const MaxFileSize = 32 << 20

// Object is one workload object of a manifest: its identity, where it was
// read, and its pod template.
type Object struct {
	// File is the path the object was read from ("-" for stdin); Doc is
	// the document's index in it, from 0.
	File string
	Doc  int
	// Line is the line of the document's first key.
	Line int
	// Source is the chart template a `helm template` comment names
	// ("# Source: chart/templates/deploy.yaml"), or "".
	Source     string
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// Template is the pod the object creates; TemplatePath is its field
	// path in the object ("spec.template" for a Deployment, "" for a Pod).
	Template     corev1.PodTemplateSpec
	TemplatePath string

	root *yaml.Node
}

// Field returns the manifest path of a field of the pod spec, e.g.
// Field("hostPID") = "spec.template.spec.hostPID" for a Deployment.
func (o *Object) Field(specField string) string {
	p := joinPath(o.TemplatePath, "spec")
	return joinPath(p, specField)
}

// MetaField returns the manifest path of a field of the pod's metadata.
func (o *Object) MetaField(f string) string {
	return joinPath(joinPath(o.TemplatePath, "metadata"), f)
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// Position returns the line and column of the field at path (dotted, with
// [i] indexes, as Field returns), or of its closest ancestor present in the
// file: a field the manifest leaves out is reported where its parent is.
func (o *Object) Position(path string) (line, col int) {
	n := o.root
	if n == nil {
		return o.Line, 1
	}
	line, col = n.Line, n.Column
	for _, tok := range splitPath(path) {
		next := child(n, tok)
		if next == nil {
			break
		}
		n = next
		line, col = n.Line, n.Column
	}
	return line, col
}

// splitPath splits "a.b[2].c" into "a", "b", "[2]", "c".
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				out = append(out, part)
				part = ""
			case i > 0:
				out = append(out, part[:i])
				part = part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					out = append(out, part)
					part = ""
					continue
				}
				out = append(out, part[:j+1])
				part = part[j+1:]
			}
		}
	}
	return out
}

// child returns the node for one path token below n: a mapping key's
// value, or a sequence element for "[i]".
func child(n *yaml.Node, tok string) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if strings.HasPrefix(tok, "[") {
		i, err := strconv.Atoi(strings.Trim(tok, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == tok {
			// Positions are the key's: "privileged: true" and
			// "securityContext:" read better than where their values
			// start.
			return keyed{n.Content[i], n.Content[i+1]}.node()
		}
	}
	return nil
}

// keyed keeps a scalar's key position while still being walkable.
type keyed struct{ key, val *yaml.Node }

func (k keyed) node() *yaml.Node {
	c := *k.val
	c.Line, c.Column = k.key.Line, k.key.Column
	return &c
}

// Skipped is a document that holds no workload: a Service, a ConfigMap, an
// empty document.
type Skipped struct {
	File string
	Doc  int
	Line int
	Kind string
}

// Error is a manifest that cannot be read, with the file, line and (when
// known) column.
type Error struct {
	File   string
	Line   int
	Column int
	Err    error
}

func (e *Error) Error() string {
	if e.Line > 0 && e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Read reads every manifest at paths: files, directories (their *.yaml,
// *.yml and *.json files, recursively, in lexical order) and "-" for
// stdin.
func Read(paths []string, stdin io.Reader) ([]Object, []Skipped, error) {
	var objs []Object
	var skipped []Skipped
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			data, err := readFile(f, stdin)
			if err != nil {
				return nil, nil, err
			}
			o, s, err := Parse(f, data)
			if err != nil {
				return nil, nil, err
			}
			objs = append(objs, o...)
			skipped = append(skipped, s...)
		}
	}
	return objs, skipped, nil
}

func expand(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(path)) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading manifests under %s: %w", p, err)
	}
	return files, nil
}

func readFile(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		if stdin == nil {
			return nil, &Error{File: name, Err: errors.New("no standard input")}
		}
		r = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Err: fmt.Errorf("larger than %d bytes", MaxFileSize)}
	}
	return data, nil
}

// Parse reads the documents of one file. JSON is YAML, so both work.
func Parse(file string, data []byte) ([]Object, []Skipped, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var objs []Object
	var skipped []Skipped
	for doc := 0; ; doc++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, &Error{File: file, Err: fmt.Errorf("document %d: %w", doc+1, err)}
		}
		if len(root.Content) == 0 || isNull(root.Content[0]) {
			continue
		}
		body := root.Content[0]
		if body.Kind != yaml.MappingNode {
			return nil, nil, &Error{File: file, Line: body.Line, Err: fmt.Errorf("document %d is not a mapping", doc+1)}
		}
		o, err := decodeObject(file, doc, &root, body)
		if err != nil {
			return nil, nil, err
		}
		if o == nil {
			skipped = append(skipped, Skipped{File: file, Doc: doc, Line: body.Line, Kind: scalar(body, "kind")})
			continue
		}
		objs = append(objs, *o)
	}
	return objs, skipped, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func scalar(m *yaml.Node, key string) string {
	if v := child(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// helmSource finds helm template's "# Source: path" comment above a
// document.
func helmSource(root, body *yaml.Node) string {
	comments := []string{root.HeadComment, body.HeadComment}
	if len(body.Content) > 0 {
		// yaml.v3 gives a comment above the first key to that key.
		comments = append(comments, body.Content[0].HeadComment)
	}
	for _, c := range comments {
		for _, line := range strings.Split(c, "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source:"); ok {
				return strings.TrimSpace(s)
			}
		}
	}
	return ""
}

// templatePath says where each kind ward reads keeps its pod template.
func templatePath(kind string) (string, bool) {
	switch kind {
	case "Pod":
		return "", true
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
		return "spec.template", true
	case "CronJob":
		return "spec.jobTemplate.spec.template", true
	}
	return "", false
}

func decodeObject(file string, doc int, root, body *yaml.Node) (*Object, error) {
	kind := scalar(body, "kind")
	apiVersion := scalar(body, "apiVersion")
	tp, ok := templatePath(kind)
	if !ok {
		return nil, nil
	}
	errAt := func(err error) error {
		return &Error{File: file, Line: body.Line, Err: fmt.Errorf("%s: %w", kind, err)}
	}
	var generic any
	if err := body.Decode(&generic); err != nil {
		return nil, errAt(err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return nil, errAt(err)
	}
	o := &Object{File: file, Doc: doc, Line: body.Line, Source: helmSource(root, body), APIVersion: apiVersion, Kind: kind, TemplatePath: tp, root: body}
	typeErr := func(err error) error {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			line, col := o.Position(te.Field)
			return &Error{File: file, Line: line, Column: col, Err: fmt.Errorf("%s: field %s: cannot read %s as %s", kind, te.Field, te.Value, te.Type)}
		}
		return errAt(err)
	}
	switch kind {
	case "Pod":
		var p *corev1.Pod
		if p, err = decodeAs[corev1.Pod](js); err == nil {
			o.Name, o.Namespace = p.Name, p.Namespace
			o.Template = corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
		}
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = decodeAs[appsv1.Deployment](js); err == nil {
			o.Name, o.Namespace, o.Template = d.Name, d.Namespace, d.Spec.Template
		}
	case "StatefulSet":
		var d *appsv1.StatefulSet
		if d, err = decodeAs[appsv1.StatefulSet](js); err == nil {
			o.Name, o.Namespace, o.Template = d.Name, d.Namespace, d.Spec.Template
			// The controller adds a volume per claim template to each pod.
			for _, t := range d.Spec.VolumeClaimTemplates {
				o.Template.Spec.Volumes = append(o.Template.Spec.Volumes, corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: t.Name + "-" + d.Name},
				}})
			}
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = decodeAs[appsv1.DaemonSet](js); err == nil {
			o.Name, o.Namespace, o.Template = d.Name, d.Namespace, d.Spec.Template
		}
	case "ReplicaSet":
		var d *appsv1.ReplicaSet
		if d, err = decodeAs[appsv1.ReplicaSet](js); err == nil {
			o.Name, o.Namespace, o.Template = d.Name, d.Namespace, d.Spec.Template
		}
	case "ReplicationController":
		var d *corev1.ReplicationController
		if d, err = decodeAs[corev1.ReplicationController](js); err == nil {
			o.Name, o.Namespace = d.Name, d.Namespace
			if d.Spec.Template != nil {
				o.Template = *d.Spec.Template
			}
		}
	case "Job":
		var d *batchv1.Job
		if d, err = decodeAs[batchv1.Job](js); err == nil {
			o.Name, o.Namespace, o.Template = d.Name, d.Namespace, d.Spec.Template
		}
	case "CronJob":
		var d *batchv1.CronJob
		if d, err = decodeAs[batchv1.CronJob](js); err == nil {
			o.Name, o.Namespace, o.Template = d.Name, d.Namespace, d.Spec.JobTemplate.Spec.Template
		}
	}
	if err != nil {
		return nil, typeErr(err)
	}
	if len(o.Template.Spec.Containers) == 0 {
		line, col := o.Position(o.Field("containers"))
		return nil, &Error{File: file, Line: line, Column: col, Err: fmt.Errorf("%s %s: %s has no containers", kind, o.Name, o.Field("containers"))}
	}
	return o, nil
}

// Unstructured returns the object as the API server's generic form (maps,
// lists, strings, int64, float64, bool), as admission policies see it.
func (o *Object) Unstructured() (map[string]any, error) {
	var m map[string]any
	if err := o.root.Decode(&m); err != nil {
		return nil, &Error{File: o.File, Line: o.Line, Err: err}
	}
	return m, nil
}

func decodeAs[T any](js []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(js, v); err != nil {
		return nil, err
	}
	return v, nil
}
