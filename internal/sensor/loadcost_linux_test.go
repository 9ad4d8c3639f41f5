package sensor

import (
	"bytes"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// TestLoadCost reports what loading (verifying) this build's program
// costs against another build's object, for a change to the C program:
// 30 alternated pairs, the median of each and of their ratios, and each
// program's size after verification. A report, not an assertion; it runs
// with WARD_BENCH=1 and WARD_SENSOR_BASELINE naming the other object:
//
//	git show main:internal/sensor/sensor_bpfel.o > /tmp/base.o
//	WARD_BENCH=1 WARD_SENSOR_BASELINE=/tmp/base.o go test -run TestLoadCost -v ./internal/sensor
func TestLoadCost(t *testing.T) {
	base := os.Getenv("WARD_SENSOR_BASELINE")
	if os.Getenv("WARD_BENCH") != "1" || base == "" {
		t.Skip("a report: WARD_BENCH=1 WARD_SENSOR_BASELINE=<object>")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	old, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	load := func(obj []byte) (time.Duration, map[string]int) {
		spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		coll, err := ebpf.NewCollection(spec)
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		defer coll.Close()
		size := map[string]int{}
		for name, p := range coll.Programs {
			if info, err := p.Info(); err == nil {
				if ins, err := info.Instructions(); err == nil {
					size[name] = len(ins)
				}
			}
		}
		return d, size
	}
	load(old) // the kernel's BTF parsed once, for both
	const pairs = 30
	var tOld, tNew []time.Duration
	var ratios []float64
	var sOld, sNew map[string]int
	for i := range pairs {
		var a, b time.Duration
		if i%2 == 0 {
			a, sOld = load(old)
			b, sNew = load(_SensorBytes)
		} else {
			b, sNew = load(_SensorBytes)
			a, sOld = load(old)
		}
		tOld, tNew, ratios = append(tOld, a), append(tNew, b), append(ratios, float64(b)/float64(a))
	}
	slices.Sort(tOld)
	slices.Sort(tNew)
	slices.Sort(ratios)
	t.Logf("load: baseline %v, this build %v (medians); ratio median %.2f over %d pairs", tOld[pairs/2], tNew[pairs/2], ratios[pairs/2], pairs)
	t.Logf("instructions after verification: baseline %v, this build %v", sOld, sNew)
}
