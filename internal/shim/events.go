package shim

import (
	"context"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/log"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ward-runtime/ward/internal/decisionlog"
)

// TopicDecision is the containerd event topic of ward's decisions, one
// event per decision-log entry, so that whatever watches containerd's
// events (`ctr events`, an audit pipeline) sees them beside TaskCreate.
const TopicDecision = "/ward/decision"

// decisionEvent is the event's payload: the decision-log entry's summary,
// as a google.protobuf.Struct, a type every containerd client can decode
// without knowing ward's.
func decisionEvent(e *decisionlog.Entry) (*structpb.Struct, error) {
	ids := findingIDs(e)
	findings := make([]any, 0, len(ids))
	for _, id := range ids {
		findings = append(findings, id)
	}
	attack := make([]any, 0, len(e.Attack))
	for _, a := range e.Attack {
		attack = append(attack, a)
	}
	fields := map[string]any{
		"event":     e.Event,
		"container": e.ContainerID,
		"action":    string(e.Action),
		"backend":   string(e.Backend),
		"rule":      e.Rule,
		"reason":    e.Reason,
		"audit":     e.Audit,
		"findings":  findings,
		"attack":    attack,
		"namespace": e.Workload.Namespace,
		"pod":       e.Workload.Pod,
		"name":      e.Workload.Container,
		"image":     e.Workload.Image,
	}
	if e.Error != "" {
		fields["error"] = e.Error
	}
	return structpb.NewStruct(fields)
}

// findingIDs lists e's findings that were not waived, each once: what the
// shim log line and the event name as the decision's findings.
func findingIDs(e *decisionlog.Entry) []string {
	ids := make([]string, 0, len(e.Findings))
	for _, f := range e.Findings {
		if f.Waived == "" && !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// publishDecision sends e to containerd, off the path of the call that made
// the decision: building the event and handing it over cost about half a
// millisecond per container, and the decision is made and enforced, and in
// the decision log and the shim log, either way. Like the decision log, an
// event that cannot be sent is reported, not fatal. e must not change
// afterwards; pending counts the send until it is done.
func publishDecision(ctx context.Context, p events.Publisher, e *decisionlog.Entry, pending *sync.WaitGroup) {
	if p == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	pending.Add(1)
	go func() {
		defer pending.Done()
		ev, err := decisionEvent(e)
		if err == nil {
			err = p.Publish(ctx, TopicDecision, ev)
		}
		if err != nil {
			log.G(ctx).WithError(err).Warn("ward: publishing decision event")
		}
	}()
}
