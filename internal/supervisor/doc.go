// Package supervisor is ward's seccomp user-notification supervisor: it
// answers, by policy, the escape system calls ward's baseline refuses, and
// raises a Falco-format alert for each (docs/detection.md).
//
// How a container gets here: with detection enabled, ward compiles its
// baseline with seccompbpf.CompileNotify, so that every EPERM the
// baseline answers for a detection rule's syscall becomes
// SECCOMP_RET_USER_NOTIF. ward-init connects to the front door's
// supervisor socket (bind-mounted at landlock.SupervisorPath) before it
// restricts itself, installs the baseline with
// SECCOMP_FILTER_FLAG_NEW_LISTENER and sends the listener fd over the
// socket; the supervisor attributes the connection to a container by the
// peer's credentials (SO_PEERCRED, checked by the kernel, never by what the
// container says), watches the listener and acknowledges; only then does
// ward-init execute the workload.
//
// Answers: deny returns EPERM (exactly what the baseline alone returns);
// alert lets the call run (SECCOMP_USER_NOTIF_FLAG_CONTINUE); freeze and
// kill deny, then hand the container to the door's Respond.
//
// Fail closed: no supervisor, no start (ward-init refuses). A supervisor
// that dies closes the listener; the kernel then answers every notified
// call ENOSYS: still a refusal, never the call. Only one listener per
// filter chain is allowed by the kernel (EBUSY), so a workload cannot
// install a filter of its own whose listener would answer CONTINUE to
// ward's notifications.
package supervisor
