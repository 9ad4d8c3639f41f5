package seccompbpf

import (
	"cmp"
	"fmt"
	goruntime "runtime"
	"slices"
)

// Audit architecture values (linux/audit.h) of the ABIs ward knows;
// prog.NativeAudit repeats the two native ones for ward-init.
const (
	AuditX86_64  uint32 = 0xc000003e
	AuditI386    uint32 = 0x40000003
	AuditAArch64 uint32 = 0xc00000b7
	AuditARM     uint32 = 0x40000028
)

// x32SyscallBit marks an x32 system call under AUDIT_ARCH_X86_64.
const x32SyscallBit uint32 = 0x40000000

// Arch is one ABI a filter can be compiled for.
type Arch struct {
	// Name is the architecture's name in OCI profiles.
	Name string
	// Audit is its AUDIT_ARCH_ value, what seccomp_data.arch holds.
	Audit uint32
	// names is the syscall table, sorted by name (zsyscalls.go).
	names []syscallNr
}

// syscallNr is one entry of a syscall table.
type syscallNr struct {
	name string
	nr   uint16
}

// Lookup returns the syscall number of name on a.
func (a Arch) Lookup(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(a.names, name, func(e syscallNr, n string) int { return cmp.Compare(e.name, n) })
	if !ok {
		return 0, false
	}
	return uint32(a.names[i].nr), true
}

// X86_64 and AArch64 are the native ABIs ward builds for.
func X86_64() Arch {
	return Arch{Name: "SCMP_ARCH_X86_64", Audit: AuditX86_64, names: x86_64Syscalls[:]}
}

// AArch64 is arm64's native ABI.
func AArch64() Arch {
	return Arch{Name: "SCMP_ARCH_AARCH64", Audit: AuditAArch64, names: aarch64Syscalls[:]}
}

// Native returns the ABI of the architecture ward was built for.
func Native() (Arch, error) {
	switch goruntime.GOARCH {
	case "amd64":
		return X86_64(), nil
	case "arm64":
		return AArch64(), nil
	}
	return Arch{}, fmt.Errorf("no seccomp compiler for %s", goruntime.GOARCH)
}

// Linux's numbers for the errnos ward's filters return (asm-generic
// errno-base.h and errno.h: the same on amd64 and arm64, the architectures
// ward compiles for). Not x/sys/unix's, which are the build host's: a
// filter for a Linux node carries Linux's numbers whichever machine
// compiles or explains it (pinned to unix's by a Linux test).
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
)
