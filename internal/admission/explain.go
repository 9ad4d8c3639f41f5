package admission

import (
	"fmt"
	"runtime"

	"github.com/ward-runtime/ward/bundle"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/nodefacts"
	"github.com/ward-runtime/ward/policy"
)

// Explain judges a loaded container the way Admit would, without preparing
// it to run: no lease (us stands for the block a front door would give),
// no pod record, no backend, no log entry. sandbox, when given, is the
// spec of the container's pod sandbox, judged first for the pod's context.
// `ward explain` and `ward harden` call it, so that what they print is
// what the node decides.
func (a *Admitter) Explain(b, sandbox *bundle.Bundle, us *policy.UsernsInput) (judge.Verdict, error) {
	facts := nodefacts.Options{Node: a.opts.NodeNamespaces}
	in := policy.Input{Spec: b.Spec, Workload: b.Workload, HostPaths: bundle.HostPaths(b.Spec), Userns: us,
		Node: nodefacts.Gather(b.Spec, b.Dir, a.policy, facts)}
	if sandbox != nil {
		sd := a.judge.Evaluator().Evaluate(policy.Input{Spec: sandbox.Spec, Workload: sandbox.Workload,
			HostPaths: bundle.HostPaths(sandbox.Spec), Node: nodefacts.Gather(sandbox.Spec, sandbox.Dir, a.policy, facts)})
		in.Pod = sd.PodContext()
	}
	v, err := a.judge.Spec(in)
	if !nodefacts.Supported {
		v.Notes = append(v.Notes, fmt.Sprintf(NoteNotNode, runtime.GOOS))
	}
	return v, err
}

// NoteNotNode is the note on a verdict explained off Linux, where the
// spec's host paths (mount sources, namespace paths, hooks) name a node's
// objects, not this machine's: they are judged by their spelling, as
// `ward scan` judges a manifest's.
const NoteNotNode = "host paths judged by their spelling: this is %s, not a Linux node; on the node ward judges what they are there (device, inode, file type, listener)"
