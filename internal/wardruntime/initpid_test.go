package wardruntime

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ward-runtime/ward/internal/backend"
	"github.com/ward-runtime/ward/policy"
)

// TestInitPIDOf: the node's supervisor reads a container's first process
// from runc's state under the root its record named when the container was
// handed over, and, for a container whose record was not there yet then,
// from the record it finds when it reads.
func TestInitPIDOf(t *testing.T) {
	root := t.TempDir()
	c := &ctx{g: globals{root: root, rootSet: true}}
	runcRoot := filepath.Join(root, "elsewhere")
	state := func(id, pid string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(runcRoot, id), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(runcRoot, id, "state.json"), []byte(`{"id":"`+id+`","init_process_pid":`+pid+`}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	save := func(id string) {
		t.Helper()
		rec := &Record{ID: id, Backend: policy.Runc, Runtime: "/usr/bin/runc", Root: runcRoot, Dialect: backend.DialectRunc, Created: time.Now()}
		if err := c.records().save(rec); err != nil {
			t.Fatal(err)
		}
	}

	save("a")
	pidOf := c.initPIDOf("a")
	state("a", "4242")
	if pid, err := pidOf(); pid != 4242 || err != nil {
		t.Errorf("handed over with its record: %d, %v; want 4242", pid, err)
	}
	// The record is gone by the time ward-init connects: the root found at
	// hand-over still says where runc's state is.
	c.records().remove("a")
	if pid, err := pidOf(); pid != 4242 || err != nil {
		t.Errorf("record removed after the hand-over: %d, %v; want 4242", pid, err)
	}

	pidOf = c.initPIDOf("b") // no record yet
	save("b")
	state("b", "77")
	if pid, err := pidOf(); pid != 77 || err != nil {
		t.Errorf("record saved after the hand-over: %d, %v; want 77", pid, err)
	}
	if pid, err := c.initPIDOf("c")(); pid != 0 || err != nil {
		t.Errorf("no record, no state: %d, %v; want 0", pid, err)
	}
}
