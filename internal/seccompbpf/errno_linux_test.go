package seccompbpf

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestLinuxErrnos pins the errno numbers filters carry to the kernel's.
func TestLinuxErrnos(t *testing.T) {
	if errnoEPERM != uint(unix.EPERM) || errnoENOSYS != uint(unix.ENOSYS) {
		t.Errorf("EPERM %d, ENOSYS %d; the kernel's are %d and %d", errnoEPERM, errnoENOSYS, unix.EPERM, unix.ENOSYS)
	}
}
