package seccompbpf

import (
	"testing"

	"github.com/ward-runtime/ward/internal/alert"
	"github.com/ward-runtime/ward/internal/profiles"
)

// BenchmarkCompile is the work a store miss adds to a generated profile.
func BenchmarkCompile(b *testing.B) {
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := gen.Profile(nil)
	if err != nil {
		b.Fatal(err)
	}
	native, err := Native()
	if err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p, native); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreCold is one process's first filter: compile, encode,
// hash, and find the file already written by an earlier process.
func BenchmarkStoreCold(b *testing.B) {
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewStore(dir, gen, "", nil)
		if err != nil {
			b.Skip(err)
		}
		if _, err := s.Filter(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreIndexed is one process's first filter when another has
// compiled it: an index entry and the filter read and checked.
func BenchmarkStoreIndexed(b *testing.B) {
	benchIndexed(b, nil, func(s *Store) error {
		_, err := s.Filter(nil)
		return err
	})
}

// benchIndexed times get on a new store over a directory an earlier store
// filled (get's first call), as a new process finds it.
func benchIndexed(b *testing.B, notify []string, get func(s *Store) error) {
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	s, err := NewStore(dir, gen, "inputs", notify)
	if err != nil {
		b.Skip(err)
	}
	if err := get(s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewStore(dir, gen, "inputs", notify)
		if err != nil {
			b.Fatal(err)
		}
		if err := get(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkloadCold is a store miss for a workload's own profile
// (containerd's RuntimeDefault): compile it, read the baseline, compose,
// encode, hash and find the file already written.
func BenchmarkWorkloadCold(b *testing.B) {
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	p := criDefault()
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewStore(dir, gen, "", alert.NotifySyscalls())
		if err != nil {
			b.Skip(err)
		}
		base, err := s.Filter(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Workload(p, base); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkloadIndexed is what a ward-runtime create pays for the
// workload's profile once any process has compiled it: the profile
// encoded and hashed, an index entry and the filter read and checked.
func BenchmarkWorkloadIndexed(b *testing.B) {
	p := criDefault()
	var base string
	benchIndexed(b, alert.NotifySyscalls(), func(s *Store) error {
		var err error
		if base == "" {
			if base, err = s.Filter(nil); err != nil {
				return err
			}
		}
		_, err = s.Workload(p, base)
		return err
	})
}

// BenchmarkEvaluate is the supervisor's cost of the workload's verdict
// for one notified call.
func BenchmarkEvaluate(b *testing.B) {
	native := X86_64()
	own, err := CompileWorkload(criDefault(), native)
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEvaluator(own)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Evaluate(Data{Nr: 165, Arch: native.Audit}); err != nil {
			b.Fatal(err)
		}
	}
}
