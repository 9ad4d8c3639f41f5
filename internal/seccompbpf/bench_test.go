package seccompbpf

import (
	"testing"

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
	gen, err := profiles.NewSeccompGenerator(nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	s, err := NewStore(dir, gen, "inputs", nil)
	if err != nil {
		b.Skip(err)
	}
	if _, err := s.Filter(nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewStore(dir, gen, "inputs", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Filter(nil); err != nil {
			b.Fatal(err)
		}
	}
}
