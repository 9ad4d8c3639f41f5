// Package seccompbpf compiles an OCI seccomp profile to a classic BPF
// program in pure Go, stores it in a small self-checking file, and installs
// it from inside a container (ward-init).
//
// Why: runc builds every container's filter with libseccomp at start, which
// costs milliseconds per container for a profile that depends only on the
// node's policy and the container's final capability set. ward compiles its
// baseline once per (policy digest, capability set), keeps the program in a
// file, and ward-init installs it just before it executes the workload, so
// runc does no seccomp work for ward's baseline.
//
// The program decides exactly as runc 1.4 with libseccomp decides for the
// same profile (the differential test in this package checks every syscall
// number and the argument-filtered rules in a BPF VM against a direct
// reading of the profile):
//
//   - an architecture the profile does not list gets libseccomp's bad-arch
//     action (kill the thread); on x86_64 so does an x32 system call
//     (X32_SYSCALL_BIT) when SCMP_ARCH_X32 is not listed;
//   - a syscall number above the largest one the profile names gets ENOSYS,
//     not EPERM, as runc's -ENOSYS stub does, so that libcs fall back from
//     system calls newer than the profile;
//   - a rule whose action equals the default action is skipped (runc does
//     the same; libseccomp refuses it), a rule with two conditions on the
//     same argument becomes one rule per condition, and the conditions of
//     one rule must all hold; arguments are compared as 64-bit values.
//
// Names are resolved with github.com/elastic/go-seccomp-bpf's syscall
// tables; a name the table does not know is skipped, as runc skips names
// libseccomp does not know. Where the tables differ (libseccomp 2.5.4 does
// not know system calls added after Linux 6.0, so runc silently drops them
// from an allow list and they get ENOSYS), this package follows what the
// profile says.
//
// A workload's own profile (RuntimeDefault, Localhost, Docker's default)
// is compiled here too (CompileWorkload) and composed with the notifying
// baseline (Compose), so that runc does no seccomp work and the profile's
// refusals of escape calls reach ward's supervisor instead of hiding them
// (ERRNO is stricter than USER_NOTIF); the supervisor answers those calls
// with the profile's own verdict where it refuses them (Evaluator, Answer).
// workload.go says how; workload_test.go checks, over every syscall number
// and the argument-filtered rules, that every call gets the answer the two
// filters gave when runc installed the profile.
package seccompbpf
