package shim

import (
	"runtime/debug"
	"sync"
	"time"
)

// idleTrim is how long the shim must have been idle before it gives freed
// memory back: longer than the gap between a pod's Create and Start calls,
// short next to the life of a pod.
const idleTrim = 250 * time.Millisecond

// trimmer returns the shim's garbage to the kernel once the calls that make
// it are over. A shim lives as long as its pod and is idle nearly all of
// that time, but Go collects only when the heap reaches its goal (4 MB at
// least), so the policy parse, the seccomp profile and the decisions of a
// pod's start would otherwise stay resident for the pod's whole life: about
// a megabyte per pod on a node with hundreds. One forced collection after
// the burst costs well under a millisecond, off every call's path.
type trimmer struct {
	mu sync.Mutex
	t  *time.Timer
}

// touch notes a call: the trim runs idleTrim after the last one.
func (m *trimmer) touch() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.t == nil {
		m.t = time.AfterFunc(idleTrim, debug.FreeOSMemory)
		return
	}
	m.t.Reset(idleTrim)
}
