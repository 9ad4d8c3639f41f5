package seccompbpf

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"

	"github.com/ward-runtime/ward/internal/seccompbpf/prog"
)

// label names an instruction position that jumps refer to before it is
// known; noLabel means the next instruction.
type label int

const noLabel label = -1

// fixup is a jump whose targets are labels.
type fixup struct {
	pc     int
	jt, jf label // conditional jump
	ja     label // unconditional jump (jt, jf unused)
}

// asm collects instructions and resolves label jumps at the end.
type asm struct {
	insns  []bpf.Instruction
	labels []int
	fixups []fixup
}

func (a *asm) emit(i bpf.Instruction) { a.insns = append(a.insns, i) }

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) bind(l label) { a.labels[l] = len(a.insns) }

// jumpIf emits a conditional jump to jt when cond holds and jf otherwise.
func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, jt, jf label) {
	a.fixups = append(a.fixups, fixup{pc: len(a.insns), jt: jt, jf: jf, ja: noLabel})
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

// jump emits an unconditional jump to l.
func (a *asm) jump(l label) {
	a.fixups = append(a.fixups, fixup{pc: len(a.insns), jt: noLabel, jf: noLabel, ja: l})
	a.emit(bpf.Jump{})
}

// skip is how far a jump at pc must skip to reach l.
func (a *asm) skip(pc int, l label) (int, error) {
	if l == noLabel {
		return 0, nil
	}
	to := a.labels[l]
	if to <= pc {
		return 0, fmt.Errorf("label %d unbound or behind instruction %d", l, pc)
	}
	return to - pc - 1, nil
}

// assemble resolves the jumps and encodes the program.
func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	if len(a.insns) > prog.MaxInsns {
		return nil, fmt.Errorf("program has %d instructions, the kernel takes %d", len(a.insns), prog.MaxInsns)
	}
	insns := slices.Clone(a.insns)
	for _, f := range a.fixups {
		if f.ja != noLabel {
			n, err := a.skip(f.pc, f.ja)
			if err != nil {
				return nil, err
			}
			insns[f.pc] = bpf.Jump{Skip: uint32(n)}
			continue
		}
		t, err := a.skip(f.pc, f.jt)
		if err != nil {
			return nil, err
		}
		e, err := a.skip(f.pc, f.jf)
		if err != nil {
			return nil, err
		}
		if t > 255 || e > 255 {
			return nil, fmt.Errorf("conditional jump at %d spans %d/%d instructions, more than 255", f.pc, t, e)
		}
		j := insns[f.pc].(bpf.JumpIf)
		j.SkipTrue, j.SkipFalse = uint8(t), uint8(e)
		insns[f.pc] = j
	}
	return bpf.Assemble(insns)
}

// segment is a range of syscall numbers sharing one decision.
type segment struct {
	lo, hi uint32
	d      *decision // nil: the default action
}

// segments covers 0..2^32-1 with table's decisions, merging neighbours
// that return the same action unconditionally, so that the search tree
// stays shallow (most of a profile is runs of allowed syscalls).
func segments(table map[uint32]*decision, def uint32) []segment {
	nrs := make([]uint32, 0, len(table))
	for nr := range table {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	var segs []segment
	next := uint32(0) // first number not yet covered
	add := func(lo, hi uint32, d *decision) {
		if n := len(segs); n > 0 && sameUncond(segs[n-1].d, d, def) {
			segs[n-1].hi = hi
			return
		}
		segs = append(segs, segment{lo: lo, hi: hi, d: d})
	}
	for _, nr := range nrs {
		if nr > next {
			add(next, nr-1, nil)
		}
		add(nr, nr, table[nr])
		next = nr + 1
	}
	if len(nrs) == 0 || nrs[len(nrs)-1] != ^uint32(0) {
		add(next, ^uint32(0), nil)
	}
	return segs
}

// sameUncond reports whether a and b both return one action without
// looking at arguments (nil is the default action).
func sameUncond(a, b *decision, def uint32) bool {
	act := func(d *decision) (uint32, bool) {
		if d == nil {
			return def, true
		}
		return d.action, d.uncond
	}
	x, okx := act(a)
	y, oky := act(b)
	return okx && oky && x == y
}

// tree emits a binary search over segs on the syscall number, which must
// be in the accumulator, with each segment's decision at its leaf.
func (a *asm) tree(segs []segment, def uint32) {
	if len(segs) == 1 {
		a.leaf(segs[0].d, def)
		return
	}
	mid := len(segs) / 2
	right := a.newLabel()
	// jge true falls to the long jump; false skips it into the left half.
	left := a.newLabel()
	a.jumpIf(bpf.JumpGreaterOrEqual, segs[mid].lo, noLabel, left)
	a.jump(right)
	a.bind(left)
	a.tree(segs[:mid], def)
	a.bind(right)
	a.tree(segs[mid:], def)
}

// leaf emits one syscall's decision. Argument loads overwrite the
// accumulator; nothing after a leaf needs the syscall number again.
func (a *asm) leaf(d *decision, def uint32) {
	switch {
	case d == nil:
		a.emit(bpf.RetConstant{Val: def})
		return
	case d.uncond:
		a.emit(bpf.RetConstant{Val: d.action})
		return
	}
	for _, s := range d.sets {
		fail := a.newLabel()
		for _, c := range s.conds {
			a.cond(c, fail)
		}
		a.emit(bpf.RetConstant{Val: s.action})
		a.bind(fail)
	}
	a.emit(bpf.RetConstant{Val: d.action})
}

// cond emits a 64-bit comparison that falls through when c holds and
// jumps to fail otherwise.
func (a *asm) cond(c cond, fail label) {
	lo := uint32(offArgs + 8*c.index)
	hi := lo + 4
	vh, vl := uint32(c.val>>32), uint32(c.val)
	pass := a.newLabel()
	ld := func(off uint32) { a.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }
	switch c.op {
	case specs.OpEqualTo:
		ld(hi)
		a.jumpIf(bpf.JumpEqual, vh, noLabel, fail)
		ld(lo)
		a.jumpIf(bpf.JumpEqual, vl, noLabel, fail)
	case specs.OpNotEqual:
		ld(hi)
		a.jumpIf(bpf.JumpEqual, vh, noLabel, pass)
		ld(lo)
		a.jumpIf(bpf.JumpEqual, vl, fail, noLabel)
	case specs.OpMaskedEqual:
		// OCI's value is the mask, valueTwo the datum.
		th, tl := uint32(c.two>>32), uint32(c.two)
		ld(hi)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vh})
		a.jumpIf(bpf.JumpEqual, th, noLabel, fail)
		ld(lo)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vl})
		a.jumpIf(bpf.JumpEqual, tl, noLabel, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		ld(hi)
		a.jumpIf(bpf.JumpGreaterThan, vh, pass, noLabel)
		a.jumpIf(bpf.JumpEqual, vh, noLabel, fail)
		ld(lo)
		test := bpf.JumpGreaterThan
		if c.op == specs.OpGreaterEqual {
			test = bpf.JumpGreaterOrEqual
		}
		a.jumpIf(test, vl, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		ld(hi)
		a.jumpIf(bpf.JumpGreaterThan, vh, fail, noLabel)
		a.jumpIf(bpf.JumpEqual, vh, noLabel, pass)
		ld(lo)
		// lo < v fails exactly when lo >= v; lo <= v fails when lo > v.
		test := bpf.JumpGreaterOrEqual
		if c.op == specs.OpLessEqual {
			test = bpf.JumpGreaterThan
		}
		a.jumpIf(test, vl, fail, pass)
	}
	a.bind(pass)
}
