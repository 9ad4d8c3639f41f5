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

// holdTimeout bounds the freeze a kill response does before the call is
// answered: the notified thread is interrupted by the freeze, so it does
// not delay it, but a cgroup that will not freeze must not hold the answer.
const holdTimeout = 2 * time.Second

// Respond is Options.Respond. For kill, it freezes the container before it
// returns, which is before the call is answered: the process that made the
// call and every other process of the container stop where they are, so
// none acts on the answer, exits before the bundle records it, or forks
// away before the kill. The freeze interrupts the notified call (the
// kernel restarts it on thaw, which after the kill never comes). The
// bundle and the kill then run on their own goroutine. For freeze, all of
// it runs there, after the answer: a container an operator thaws goes on
// with its call refused, instead of making it again and freezing again.
func (r Responder) Respond(c Container, e alert.Event, resp policy.Response) {
	var cg *freezer.Cgroup
	var err error
	if resp == policy.RespondKill {
		ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
		cg, err = r.hold(ctx, c)
		cancel()
	}
	go func() {
		if err != nil && r.Logf != nil {
			// respond tries again, with its own, longer bound.
			r.Logf("supervisor: %s of container %s: before the answer: %v", resp, c.ID, err)
		}
		if err := r.respond(c, cg, e, resp); err != nil && r.Logf != nil {
			r.Logf("supervisor: %s of container %s: %v", resp, c.ID, err)
		}
	}()
}

// hold locates the container's cgroup and freezes it.
func (r Responder) hold(ctx context.Context, c Container) (*freezer.Cgroup, error) {
	h, err := freezer.Host()
	if err != nil {
		return nil, err
	}
	cg, err := freezer.Locate(h, c.ID, c.PID, c.CgroupsPath)
	if err != nil {
		return nil, err
	}
	if err := cg.Freeze(ctx); err != nil {
		return nil, fmt.Errorf("freezing: %w", err)
	}
	return cg, nil
}

// respond freezes the container (unless held already: cg non-nil),
// collects its incident bundle and, for kill, kills it.
func (r Responder) respond(c Container, cg *freezer.Cgroup, e alert.Event, resp policy.Response) error {
	ctx, cancel := context.WithTimeout(context.Background(), respondTimeout)
	defer cancel()
	if cg == nil {
		var err error
		if cg, err = r.hold(ctx, c); err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	a := alert.New(e, host)
	line, _ := json.Marshal(a)
	_, err := incident.NewStore(r.StateDir).Collect(ctx, incident.Input{
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
