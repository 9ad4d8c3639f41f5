package harden

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/policy"
)

// TestSharesHostNetworkByIdentity: a stand-alone container that joins a
// network namespace by path (Docker's or Podman's --network container:X, a
// Podman pod's member) shares the host's only if the path reaches the
// host's namespace; a path the facts cannot resolve may be the host's.
func TestSharesHostNetworkByIdentity(t *testing.T) {
	host := policy.ObjectID{Dev: 4, Ino: 1}
	other := policy.ObjectID{Dev: 4, Ino: 2}
	facts := &policy.NodeFacts{
		Objects: map[string]policy.HostObject{
			"/proc/10/ns/net":               {ID: other, Kind: policy.KindNamespace},
			"/var/run/docker/netns/default": {ID: host, Kind: policy.KindNamespace},
		},
		HostNamespaces: map[specs.LinuxNamespaceType]policy.ObjectID{specs.NetworkNamespace: host},
	}
	spec := func(p string) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: p}}}}
	}
	for _, tc := range []struct {
		path  string
		facts *policy.NodeFacts
		want  bool
	}{
		{"", facts, false},
		{"/proc/10/ns/net", facts, false},
		{"/var/run/docker/netns/default", facts, true},
		{"/proc/11/ns/net", facts, true},
		{"/proc/10/ns/net", nil, true},
	} {
		s := spec(tc.path)
		if got := SharesHostNetwork(s, &policy.Input{Spec: s, Node: tc.facts}); got != tc.want {
			t.Errorf("%q (facts %v): %v, want %v", tc.path, tc.facts != nil, got, tc.want)
		}
	}
	if !SharesHostNetwork(&specs.Spec{Linux: &specs.Linux{}}, &policy.Input{Node: facts}) {
		t.Error("no network namespace: not the host's")
	}
}
