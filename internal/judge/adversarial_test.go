package judge

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/userns"
	"github.com/ward-runtime/ward/policy"
)

// adversarialCase is one directory of testdata/adversarial: a crafted
// spec (config.json) and what ward must decide (case.json), with made-up
// node facts for the host objects it names.
type adversarialCase struct {
	Reason string `json:"reason"`
	Expect struct {
		Action  policy.Action  `json:"action"`
		Backend policy.Backend `json:"backend"`
		Finding string         `json:"finding"`
		Rule    string         `json:"rule"`
		// Error: the pipeline must refuse (fail closed) with this text.
		Error string `json:"error"`
	} `json:"expect"`
	// Pod: the spec is an app container of testdata/corpus/cri-ordinary,
	// judged with that pod's sandbox.
	Pod         bool   `json:"pod"`
	ContainerID string `json:"containerID"`
	// Objects say what paths of the spec are on the fake node: "as" names
	// an identity ("/etc": that directory; "new:N": a fresh object;
	// "hostns:pid": the host's namespace; "hook:/usr/sbin/dockerd": an
	// allowed hook binary).
	Objects map[string]struct {
		As            string      `json:"as"`
		Kind          policy.Kind `json:"kind"`
		Resolved      string      `json:"resolved"`
		Listener      string      `json:"listener"`
		WorldWritable bool        `json:"worldWritable"`
		// Below: a fresh object inside this directory.
		Below string `json:"below"`
	} `json:"objects"`
	SandboxNamespaces map[specs.LinuxNamespaceType]string `json:"sandboxNamespaces"`
}

// fakeNode gives every path of the fake node an identity: sensitive
// directories and their parents by path, host namespaces, hook binaries.
type fakeNode struct{ ids map[string]policy.ObjectID }

func (n *fakeNode) id(name string) policy.ObjectID {
	if id, ok := n.ids[name]; ok {
		return id
	}
	id := policy.ObjectID{Dev: 1, Ino: uint64(100 + len(n.ids))}
	switch {
	case strings.HasPrefix(name, "new:"):
		v, _ := strconv.Atoi(name[4:])
		id = policy.ObjectID{Dev: 9, Ino: uint64(v)}
	case strings.HasPrefix(name, "hostns:"):
		id = policy.ObjectID{Dev: 4, Ino: uint64(4026531800 + len(n.ids))}
	case strings.HasPrefix(name, "hook:"):
		id = policy.ObjectID{Dev: 8, Ino: uint64(500 + len(n.ids))}
	}
	n.ids[name] = id
	return id
}

// ancestors of a directory of the fake node, nearest first.
func (n *fakeNode) ancestors(dir string) []policy.ObjectID {
	var out []policy.ObjectID
	for dir != "/" {
		dir = path.Dir(dir)
		out = append(out, n.id(dir))
	}
	return out
}

func (c *adversarialCase) facts(p *policy.Policy) *policy.NodeFacts {
	n := &fakeNode{ids: map[string]policy.ObjectID{}}
	f := &policy.NodeFacts{Objects: map[string]policy.HostObject{}, HostNamespaces: map[specs.LinuxNamespaceType]policy.ObjectID{}}
	for _, s := range p.SensitivePaths() {
		s.ID, s.Ancestors = n.id(s.Path), n.ancestors(s.Path)
		f.Sensitive = append(f.Sensitive, s)
	}
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace,
		specs.MountNamespace, specs.UserNamespace, specs.CgroupNamespace} {
		f.HostNamespaces[t] = n.id("hostns:" + string(t))
	}
	for _, h := range p.Node.Hooks {
		f.Hooks = append(f.Hooks, policy.HookObject{Path: h.Path, ID: n.id("hook:" + h.Path)})
	}
	for spelled, o := range c.Objects {
		as := o.As
		if as == "hostns:network" || as == "hostns:pid" || as == "hostns:ipc" {
			as = "hostns:" + string(map[string]specs.LinuxNamespaceType{"hostns:network": specs.NetworkNamespace, "hostns:pid": specs.PIDNamespace, "hostns:ipc": specs.IPCNamespace}[as])
		}
		ob := policy.HostObject{ID: n.id(as), Kind: o.Kind, Resolved: o.Resolved, Listener: o.Listener, WorldWritable: o.WorldWritable}
		switch {
		case o.Below != "":
			ob.Ancestors = append([]policy.ObjectID{n.id(o.Below)}, n.ancestors(o.Below)...)
		case strings.HasPrefix(as, "/"):
			ob.Ancestors = n.ancestors(as)
		case o.Kind != policy.KindNamespace:
			ob.Ancestors = []policy.ObjectID{n.id("/")}
		}
		f.Objects[spelled] = ob
	}
	if len(c.SandboxNamespaces) > 0 {
		f.SandboxNamespaces = map[specs.LinuxNamespaceType]policy.ObjectID{}
		for t, as := range c.SandboxNamespaces {
			f.SandboxNamespaces[t] = n.id(as)
		}
	}
	return f
}

// TestAdversarialCorpus judges every crafted spec of testdata/adversarial
// and checks the expected decision; the reports are golden files in
// testdata/golden-adversarial (go test ./internal/judge -update).
func TestAdversarialCorpus(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/adversarial/*/case.json")
	for i := range dirs {
		dirs[i] = filepath.Dir(dirs[i])
	}
	if err != nil || len(dirs) < 50 {
		t.Fatalf("adversarial corpus: %d cases, want at least 50 (%v)", len(dirs), err)
	}
	pod := corpusCase{name: "cri-ordinary", dir: "../../testdata/corpus/cri-ordinary"}
	data, err := os.ReadFile(filepath.Join(pod.dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pod.meta); err != nil {
		t.Fatal(err)
	}
	p := pod.nodePolicy(t)
	j, err := New(p, Options{Launcher: testLauncher, UsernsPool: []userns.Range{userns.Placeholder()}})
	if err != nil {
		t.Fatal(err)
	}
	placeholder := func(join string) *policy.UsernsInput {
		return &policy.UsernsInput{HostID: userns.Placeholder().Start, Size: userns.Placeholder().Size, Join: join, Placeholder: true}
	}
	sb := load(t, filepath.Join(pod.dir, "sandbox.json"))
	sv, err := j.Spec(policy.Input{Spec: sb.Spec, Workload: sb.Workload, Userns: placeholder("")})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, d := range dirs {
		name := filepath.Base(d)
		t.Run(name, func(t *testing.T) {
			var c adversarialCase
			data, err := os.ReadFile(filepath.Join(d, "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			if c.Reason == "" {
				t.Fatal("case.json has no reason")
			}
			b := load(t, filepath.Join(d, "config.json"))
			in := policy.Input{Spec: b.Spec, Workload: b.Workload, Node: c.facts(p), ContainerID: c.ContainerID, Userns: placeholder("")}
			if c.Pod {
				if b.Workload.Kind != bundle.PodContainer {
					t.Fatalf("a pod case must be an app container, is %s", b.Workload.Kind)
				}
				in.Pod, in.Userns = sv.PodContext(), placeholder("/proc/<sandbox pid>/ns/user")
			}
			v, err := j.Spec(in)
			if c.Expect.Error != "" {
				if err == nil || !strings.Contains(err.Error(), c.Expect.Error) {
					t.Fatalf("want the pipeline to refuse with %q, got %v (decision %s)", c.Expect.Error, err, v.Action)
				}
				counts["refused"]++
				return
			}
			if err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			counts[string(v.Action)]++
			if v.Action != c.Expect.Action || (c.Expect.Backend != "" && v.Backend != c.Expect.Backend) {
				t.Errorf("decision %s/%s (rule %s, findings %v), want %s/%s: %s", v.Action, v.Backend, v.Rule, findingIDs(v.Findings), c.Expect.Action, c.Expect.Backend, c.Reason)
			}
			if c.Expect.Rule != "" && v.Rule != c.Expect.Rule {
				t.Errorf("rule %s, want %s", v.Rule, c.Expect.Rule)
			}
			if c.Expect.Finding != "" && !slices.ContainsFunc(v.Findings, func(f policy.Finding) bool { return f.Check.ID == c.Expect.Finding && f.Waived == "" }) {
				t.Errorf("finding %s missing from %v: %s", c.Expect.Finding, findingIDs(v.Findings), c.Reason)
			}
			got, err := json.MarshalIndent(v.Report(p), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "golden-adversarial", name+".json"), append(got, '\n'))
		})
	}
	t.Logf("%d adversarial cases: %v", len(dirs), counts)
}
