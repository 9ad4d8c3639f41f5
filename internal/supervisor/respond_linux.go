package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/freezer"
	"github.com/ward-runtime/ward/internal/incident"
	"github.com/ward-runtime/ward/policy"
)

// respondTimeout bounds one response: freeze, collect, kill.
const respondTimeout = 30 * time.Second

// Responder acts on the freeze and kill responses (Options.Respond): it
// freezes the container's cgroup, collects an incident bundle under
// <stateDir>/incidents while it is frozen, and for kill then kills it
// (freezer.Cgroup.Kill, which keeps it frozen while it signals, so that
// nothing forks away). A frozen container stays frozen for the operator
// (`ward incident show`, then thaw or delete it).
type Responder struct {
	// StateDir holds the incident bundles.
	StateDir string
	// DecisionLog is the node's decision log ("" for none).
	DecisionLog string
	// Logf reports what could not be done.
	Logf func(format string, args ...any)
}

// Respond is Options.Respond. It runs on its own goroutine: the call
// that triggered it has been answered already.
func (r Responder) Respond(c Container, e alert.Event, resp policy.Response) {
	go func() {
		if err := r.respond(c, e, resp); err != nil && r.Logf != nil {
			r.Logf("supervisor: %s of container %s: %v", resp, c.ID, err)
		}
	}()
}

func (r Responder) respond(c Container, e alert.Event, resp policy.Response) error {
	ctx, cancel := context.WithTimeout(context.Background(), respondTimeout)
	defer cancel()
	h, err := freezer.Host()
	if err != nil {
		return err
	}
	cg, err := freezer.Locate(h, c.ID, c.PID, c.CgroupsPath)
	if err != nil {
		return err
	}
	if err := cg.Freeze(ctx); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	host, _ := os.Hostname()
	a := alert.New(e, host)
	line, _ := json.Marshal(a)
	_, err = incident.NewStore(r.StateDir).Collect(ctx, incident.Input{
		ContainerID: c.ID, Bundle: c.Bundle, Pid: c.PID, Cgroup: cg, DecisionLog: r.DecisionLog,
		Trigger: incident.Trigger{Rule: a.Rule, Response: string(resp), Output: a.Output},
		Alerts:  []json.RawMessage{line}, Time: e.Time,
	})
	if err != nil {
		err = fmt.Errorf("collecting the incident bundle: %w", err)
	}
	if resp == policy.RespondKill {
		if _, kerr := cg.Kill(ctx); kerr != nil {
			return fmt.Errorf("killing: %w (%v)", kerr, err)
		}
	}
	return err
}
