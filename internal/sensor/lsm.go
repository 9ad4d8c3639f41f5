//go:build linux

package sensor

import (
	"errors"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ProbeLSM loads and attaches a BPF-LSM program that allows everything
// (file_open, returning 0) and removes it: nil when the kernel would let
// ward deny from BPF, else a *NotSupportedError saying why not.
func ProbeLSM() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:       "ward_lsm_probe",
		Type:       ebpf.LSM,
		AttachType: ebpf.AttachLSMMac,
		AttachTo:   "file_open",
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return lsmError(err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return lsmError(err)
	}
	return l.Close()
}

func lsmError(err error) error {
	min := ""
	if errors.Is(err, ebpf.ErrNotSupported) {
		min = "5.7"
	}
	feature := "BPF-LSM programs"
	if errors.Is(err, unix.EPERM) {
		feature += " (EPERM: lockdown, or \"bpf\" not among the active LSMs)"
	}
	return &NotSupportedError{Feature: feature, MinimumVersion: min, Err: err}
}
