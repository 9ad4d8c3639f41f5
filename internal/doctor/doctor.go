// Package doctor checks a node the way kube-bench and docker-bench check
// theirs: the kernel features ward relies on, the runtimes it hands
// containers to, and the container manager and kubelet settings that decide
// whether containers reach ward at all. Each check prints PASS, WARN or FAIL
// with a reference an operator can look up.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/ward-runtime/ward/internal/sensor"

	wardversion "github.com/ward-runtime/ward/internal/version"
)

// Status is a check's outcome.
type Status string

const (
	// Pass: ward's promise holds on this node.
	Pass Status = "PASS"
	// Warn: ward works, with less protection than it could have.
	Warn Status = "WARN"
	// Fail: a promise ward makes does not hold on this node.
	Fail Status = "FAIL"
)

// Result is one check's outcome.
type Result struct {
	// ID is stable, e.g. "kernel.landlock".
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Title names what was checked.
	Title string `json:"title"`
	// Detail says what was found and, for WARN and FAIL, what to do.
	Detail string `json:"detail"`
	// Ref is a reference to look up: a CVE, a benchmark item, a document.
	Ref string `json:"ref,omitempty"`
}

// Node is the node being checked. Root prefixes every file path, so that
// tests (and `ward doctor --root`) can check a tree other than "/"; kernel
// probes always look at the running kernel.
type Node struct {
	Root string
	// Path is searched for runtime binaries (PATH syntax).
	Path string
	// Kernel probes the running kernel.
	Kernel Kernel
}

// Kernel is what the checks ask of the running kernel. The real one is
// HostKernel; it is an interface so that the file and version checks can
// be tested without the probes' privileges.
type Kernel interface {
	// LandlockABI returns the Landlock ABI version, or an error when
	// Landlock is unavailable.
	LandlockABI() (int, error)
	// IdmapSupported reports whether an idmapped mount can be made of dir.
	IdmapSupported(dir string) error
	// CgroupVersion returns 2 for a unified hierarchy, 1 for v1 or hybrid.
	CgroupVersion() (int, error)
	// Sensor loads ward's eBPF sensor and unloads it: err says why it
	// cannot run, lsm why BPF-LSM (denying, not only seeing) cannot.
	Sensor() (lsm, err error)
	// PinnedSensors lists the node-wide sensors pinned in bpffs.
	PinnedSensors() ([]sensor.Pinned, error)
}

func (n *Node) path(p string) string {
	if n.Root == "" {
		return p
	}
	return filepath.Join(n.Root, p)
}

// check is one entry of the table.
type check func(n *Node) []Result

func checks() []check {
	return []check{
		checkNodeConfig,
		checkLandlock,
		checkUserns,
		checkUsernsPool,
		checkSeccomp,
		checkIdmap,
		checkCgroup,
		checkSensor,
		checkSensorPins,
		checkRunc,
		checkRunsc,
		checkKata,
		checkContainerd,
		checkKubeletSeccomp,
		checkSockets,
	}
}

// Run runs every check.
func Run(n *Node) []Result {
	var out []Result
	for _, c := range checks() {
		out = append(out, c(n)...)
	}
	return out
}

// Failed reports whether any result is a FAIL.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// WriteText prints results as a table.
func WriteText(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var pass, warn, fail int
	for _, r := range results {
		switch r.Status {
		case Pass:
			pass++
		case Warn:
			warn++
		case Fail:
			fail++
		}
		ref := ""
		if r.Ref != "" {
			ref = " [" + r.Ref + "]"
		}
		fmt.Fprintf(tw, "[%s]\t%s\t%s%s\n", r.Status, r.Title, r.Detail, ref)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d passed, %d warnings, %d failed (ward %s)\n", pass, warn, fail, wardversion.Version())
	return err
}

// Report is the JSON document `ward doctor --json` prints.
type Report struct {
	WardVersion string   `json:"wardVersion"`
	Results     []Result `json:"results"`
}

// WriteJSON prints results as a Report.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Report{WardVersion: wardversion.Version(), Results: results})
}
