package policy

import (
	"strings"
	"testing"
)

// TestExtendsDefault: a node file with `extends: default` states only its
// differences; without it, the sample policy in contrib used to replace the
// default as a whole and so turned user namespaces off.
func TestExtendsDefault(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte(`extends: default
mode: audit
untrusted:
  namespaces: [tenant-*]
rules:
  - name: reject-host-network
    reason: no host network here
    match: {findings: [host-network]}
    action: reject
  - name: reject-host-takeover
    reason: replaced in place
    match: {findings: [privileged]}
    action: reject
`), "node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != Audit || !bool(p.Userns.Enabled) || p.Userns.Enabled != def.Userns.Enabled || p.APIVersion != APIVersion {
		t.Errorf("mode %s, userns %v: the default's settings were not kept", p.Mode, p.Userns.Enabled)
	}
	if got := strings.Join(p.Untrusted.Namespaces, ","); got != "tenant-*" || p.Untrusted.Annotation != def.Untrusted.Annotation {
		t.Errorf("untrusted: %+v", p.Untrusted)
	}
	if len(p.Rules) != len(def.Rules)+1 || p.Rules[len(p.Rules)-1].Name != "reject-host-network" {
		t.Errorf("rules: %d (default %d); last %q", len(p.Rules), len(def.Rules), p.Rules[len(p.Rules)-1].Name)
	}
	for i, r := range def.Rules {
		if r.Name == "reject-host-takeover" && p.Rules[i].Reason != "replaced in place" {
			t.Errorf("rule %s not replaced in place: %q", r.Name, p.Rules[i].Reason)
		}
	}
	if len(p.Exemptions) != len(def.Exemptions) || len(p.Harden.Capabilities) != len(def.Harden.Capabilities) {
		t.Error("exemptions or capabilities lost")
	}
	if p.Source != "node.yaml" || p.Extends != "default" {
		t.Errorf("source %q extends %q", p.Source, p.Extends)
	}
}

func TestStrictPolicyErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"extends something else", "extends: ./other.yaml\n", `line 1: extends: want default`},
		{"extended rule invalid, located in the file", "extends: default\n\nrules:\n  - name: r\n    reason: x\n    match: {findings: [host-pid]}\n    action: allow\n", "line 7: rules["},
		{"extended unknown field", "extends: default\ncolour: blue\n", "line 2: field colour not found"},
		{"yes is no boolean", validPolicy + "userns:\n  enabled: yes\n", `line 10: want true or false (unquoted), got "yes"`},
		{"quoted false is no boolean", validPolicy + "userns:\n  enabled: \"false\"\n", `line 10: want true or false (unquoted), got "false"`},
		{"second document", validPolicy + "---\nmode: audit\n", "line 9: a second YAML document"},
		{"glob with ?", validPolicy + "untrusted:\n  namespaces:\n    - ci-?\n", `line 11: untrusted.namespaces[0]: "ci-?" can never match: '?' does not occur in a namespace ('*' is the only wildcard)`},
		{"namespace glob in upper case", strings.Replace(validPolicy, "findings: [host-pid]", "namespaces: [Prod-*]", 1), `rules[0].match.namespaces[0]: "Prod-*" can never match: 'P'`},
		{"image glob with a space", strings.Replace(validPolicy, "findings: [host-pid]", "images: ['nginx *']", 1), `rules[0].match.images[0]: "nginx *" can never match: ' '`},
		{"empty glob", validPolicy + "untrusted:\n  allowedRegistries: ['']\n", "untrusted.allowedRegistries[0]: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "node.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), "node.yaml: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	for _, ok := range []string{"true", "True", "false", "FALSE"} {
		if _, err := Parse([]byte(validPolicy+"userns:\n  enabled: "+ok+"\n"), "node.yaml"); err != nil {
			t.Errorf("enabled: %s: %v", ok, err)
		}
	}
}
