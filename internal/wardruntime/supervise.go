package wardruntime

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ward-runtime/ward/internal/admission"
	"github.com/ward-runtime/ward/internal/judge"
	"github.com/ward-runtime/ward/internal/supervisor"
)

// superviseCommand is the hidden subcommand of a container's supervisor.
// runc has no command of that name, so no caller's command line can mean
// it.
const superviseCommand = "ward-supervise"

// Why a process per container (docs/detection.md): ward-runtime is gone
// once it has exec'd runc, and Docker and Podman run no ward daemon. The
// supervisor, like conmon, is started by create, lives as long as the
// container and dies with it; a node daemon would add a service every
// Docker or Podman node must install and keep running before any
// container may start, and one crash would leave every container's
// escape calls failing with ENOSYS at once.

// supervised is create's handle on the container's supervisor: it is
// listening when admission runs (the socket goes into the spec) and learns
// which container it serves once admission has decided.
type supervised struct {
	socket string
	info   *os.File
}

// readyTimeout bounds the wait for a supervisor to listen.
const readyTimeout = 5 * time.Second

// startSupervisor starts the container's supervisor; nil (detection off
// for this container, a warning said why) when it cannot.
func (c *ctx) startSupervisor(id string) *supervised {
	// Without ward-init nothing installs a filter that notifies.
	if c.env.Spawn == nil || judge.Launcher() == "" {
		return nil
	}
	var b [8]byte
	rand.Read(b[:])
	sock := filepath.Join(supervisor.DefaultDir, "rt-"+hex.EncodeToString(b[:])+".sock")
	infoR, infoW, err := os.Pipe()
	if err != nil {
		c.log.warn(fmt.Sprintf("ward-runtime: no seccomp supervisor for %s: %v", id, err))
		return nil
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		infoR.Close()
		infoW.Close()
		c.log.warn(fmt.Sprintf("ward-runtime: no seccomp supervisor for %s: %v", id, err))
		return nil
	}
	args := append(append([]string(nil), c.globalArgs...), superviseCommand, id, sock)
	err = c.env.Spawn(args, []*os.File{infoR, readyW})
	infoR.Close()
	readyW.Close()
	if err == nil {
		readyR.SetReadDeadline(time.Now().Add(readyTimeout))
		var ok [1]byte
		if _, rerr := io.ReadFull(readyR, ok[:]); rerr != nil {
			err = fmt.Errorf("it did not start listening: %w", rerr)
		}
	}
	readyR.Close()
	if err != nil {
		infoW.Close()
		c.log.warn(fmt.Sprintf("ward-runtime: no seccomp supervisor for %s (escape calls are refused without alerts): %v", id, err))
		return nil
	}
	return &supervised{socket: sock, info: infoW}
}

// listening is the socket, "" without a supervisor.
func (s *supervised) listening() string {
	if s == nil {
		return ""
	}
	return s.socket
}

// commit tells the supervisor its container, or, when the container does
// not use it (detection off, a sandbox runtime), lets it exit.
func (s *supervised) commit(ad *admission.Admission, adm *admission.Admitter) {
	if s == nil {
		return
	}
	defer s.info.Close()
	if ad == nil || !supervisor.Uses(ad.Bundle.Spec) {
		return
	}
	c := supervisor.ContainerOf(ad, adm, 0)
	json.NewEncoder(s.info).Encode(supervisor.RecordOf(c))
}

// runSupervise is the supervisor: `ward-supervise ID SOCKET`, with the
// container's information to read on fd 3 and fd 4 to close once it
// listens. It serves until the container's record is gone.
func runSupervise(c *ctx, cl cmdline) error {
	if len(cl.operands) != 2 {
		return fmt.Errorf("%s: want ID and SOCKET", superviseCommand)
	}
	id, sock := cl.operands[0], cl.operands[1]
	normalPriority()
	info, ready := os.NewFile(3, "info"), os.NewFile(4, "ready")
	alerts, err := c.cfg.Alerts.Open(c.cfg.StateDir, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", superviseCommand, id, err)
	}
	defer alerts.Close()
	logf := func(format string, args ...any) { c.log.warn(fmt.Sprintf(format, args...)) }
	respond := supervisor.Responder{StateDir: c.cfg.StateDir, DecisionLog: c.cfg.LogPath(), Logf: logf}.Respond
	// The eBPF sensor, for what seccomp cannot see (docs/sensors.md).
	sensors := &supervisor.Sensors{Alerts: alerts, Respond: respond, Logf: logf, StateDir: c.cfg.StateDir}
	defer sensors.Close()

	var mu sync.Mutex
	var ctr *supervisor.Container
	var reg *supervisor.Registry
	known := make(chan struct{})
	resolve := func(pid int) (supervisor.Container, error) {
		select {
		case <-known:
		case <-time.After(10 * time.Second):
			return supervisor.Container{}, errors.New("the container was never admitted")
		}
		mu.Lock()
		defer mu.Unlock()
		if reg == nil {
			// The container's first process, from runc's state: it
			// exists once create has returned, before any process of
			// the container can connect. Attribution is then the
			// shim's: that process, or one in its mount namespace (an
			// exec session); never whoever connects first (the socket
			// is reachable from the host).
			init, err := c.initPID(id)
			if err == nil && init == 0 {
				err = errors.New("no state")
			}
			if err != nil {
				return supervisor.Container{}, fmt.Errorf("finding the first process of container %s: %w", id, err)
			}
			ctr.PID = init
			reg = supervisor.NewRegistry()
			reg.Add(*ctr, init)
			sensors.Add(*ctr)
		}
		return reg.Resolve(pid)
	}
	sup, err := supervisor.Listen(supervisor.Options{Socket: sock, Resolve: resolve, Alerts: alerts, Logf: logf,
		Respond: respond})
	if err != nil {
		return fmt.Errorf("%s %s: %w", superviseCommand, id, err)
	}
	defer sup.Close()
	ready.Write([]byte{1})
	ready.Close()

	var in supervisor.Record
	err = json.NewDecoder(io.LimitReader(info, 1<<20)).Decode(&in)
	info.Close()
	if err != nil {
		return nil // not admitted, or not supervised: nothing to do
	}
	if bool(in.Detection.Enabled) && c.cfg.Alerts.SensorOn() {
		sensors.Start()
	}
	unpacked := in.Unpack()
	mu.Lock()
	ctr = &unpacked
	mu.Unlock()
	close(known)
	for {
		time.Sleep(2 * time.Second)
		if _, err := c.records().load(id); errors.Is(err, errNoRecord) {
			return nil
		}
		mu.Lock()
		pid := ctr.PID
		mu.Unlock()
		if pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
			return nil
		}
	}
}

// normalPriority undoes the idle priority a helper is started with
// (spawnSelf): a blocked system call waits for this process's answer.
func normalPriority() {
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0)
		}
	}
}
