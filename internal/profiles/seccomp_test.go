package profiles

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestIsUnconfinedAndIsDefaultAllow(t *testing.T) {
	errno := uint(1)
	allowRead := []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}
	denyMount := []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: &errno}}
	tests := []struct {
		name             string
		s                *specs.LinuxSeccomp
		unconfined, open bool
	}{
		{"nil", nil, true, false},
		{"empty, runc disables seccomp", &specs.LinuxSeccomp{}, true, false},
		{"architectures only, still disabled", &specs.LinuxSeccomp{Architectures: []specs.Arch{specs.ArchX86_64}}, true, false},
		{"allow with a deny list", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: denyMount}, false, true},
		{"allow and nothing else", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, false, true},
		{"log", &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, false, true},
		{"errno allow list", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &errno, Syscalls: allowRead}, false, false},
		{"kill process", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: allowRead}, false, false},
		{"trace fails untraced syscalls", &specs.LinuxSeccomp{DefaultAction: specs.ActTrace, Syscalls: allowRead}, false, false},
		{"notify belongs to its listener", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/run/agent.sock"}, false, false},
		{"rules without a default action", &specs.LinuxSeccomp{Syscalls: allowRead}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUnconfined(tt.s); got != tt.unconfined {
				t.Errorf("IsUnconfined = %v, want %v", got, tt.unconfined)
			}
			if got := IsDefaultAllow(tt.s); got != tt.open {
				t.Errorf("IsDefaultAllow = %v, want %v", got, tt.open)
			}
		})
	}
}
