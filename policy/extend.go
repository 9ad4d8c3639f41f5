package policy

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// A node file with `extends: default` states only its differences from the
// embedded default policy; without it, a node file replaces the default as
// a whole (and a sample that copied an old default turns off what a newer
// one added). The merge, on the YAML trees:
//   - a mapping merges key by key, recursively;
//   - rules and exemptions merge by name: an entry named like one of the
//     default's replaces it in place, others are appended after the
//     default's;
//   - any other value (a scalar, a list such as capabilities or
//     namespaces) replaces the default's.
//
// Removing a default rule takes a file that does not extend the default.

// namedLists are the top-level lists merged by name.
var namedLists = map[string]bool{"rules": true, "exemptions": true}

// extendTree merges the overlay document over the base and returns the
// merged document node. Nodes keep the lines of the document they came
// from, so an error in the node file's part is located in that file.
func extendTree(base, overlay []byte) (*yaml.Node, error) {
	var b, o yaml.Node
	if err := yaml.Unmarshal(base, &b); err != nil {
		return nil, fmt.Errorf("parsing the default: %w", err)
	}
	if err := yaml.Unmarshal(overlay, &o); err != nil {
		return nil, err
	}
	bm, om := docMapping(&b), docMapping(&o)
	if bm == nil || om == nil {
		return nil, errors.New("a policy is a mapping")
	}
	mergeMapping(bm, om, true)
	return &b, nil
}

// extend is extendTree encoded back to YAML, to be decoded strictly.
func extend(base, overlay []byte) ([]byte, error) {
	n, err := extendTree(base, overlay)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(n)
}

func docMapping(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// mergeMapping merges o's keys into b.
func mergeMapping(b, o *yaml.Node, top bool) {
	for i := 0; i+1 < len(o.Content); i += 2 {
		key, val := o.Content[i], o.Content[i+1]
		if top && key.Value == "extends" {
			continue
		}
		j := mappingIndex(b, key.Value)
		switch {
		case j < 0:
			b.Content = append(b.Content, key, val)
		case b.Content[j+1].Kind == yaml.MappingNode && val.Kind == yaml.MappingNode:
			mergeMapping(b.Content[j+1], val, false)
		case top && namedLists[key.Value] && b.Content[j+1].Kind == yaml.SequenceNode && val.Kind == yaml.SequenceNode:
			mergeNamed(b.Content[j+1], val)
		default:
			b.Content[j], b.Content[j+1] = key, val
		}
	}
}

// mergeNamed merges a list of named entries: same name replaces, a new
// name is appended.
func mergeNamed(b, o *yaml.Node) {
	for _, entry := range o.Content {
		name := entryName(entry)
		replaced := false
		for k, old := range b.Content {
			if name != "" && entryName(old) == name {
				b.Content[k] = entry
				replaced = true
				break
			}
		}
		if !replaced {
			b.Content = append(b.Content, entry)
		}
	}
}

func entryName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	if j := mappingIndex(n, "name"); j >= 0 {
		return n.Content[j+1].Value
	}
	return ""
}

func mappingIndex(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}
