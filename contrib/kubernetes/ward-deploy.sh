#!/bin/sh
# ward-deploy.sh: what ward's node DaemonSets run on each node.
#
#   ward-deploy.sh install     (ward-deploy.yaml) install or upgrade ward on the
#                              host, restart containerd only when its drop-in
#                              changed, label the node, mark the pod ready, wait.
#                              On SIGTERM it just exits: a rollout, an image
#                              upgrade or a deleted pod leaves ward installed.
#   ward-deploy.sh uninstall   (ward-cleanup.yaml, an explicit action) unlabel
#                              the node, uninstall, restart containerd, mark
#                              the pod ready, wait. Safe to run twice.
#
# The host's / is mounted at $WARD_HOST_ROOT (default /host); the pod runs
# privileged with hostPID, and runs the host's systemctl and containerd in
# the mount namespace of a host process: PID 1, the host's init, unless
# WARD_HOST_PID names another or WARD_HOST_PIDFILE a host file holding it
# (the chart's installer.hostProcess). NODE_NAME comes from the downward
# API; WARD_NODE_POLICY, when set, is the node policy to write (the chart's
# ConfigMap).
set -eu

HOST_ROOT=${WARD_HOST_ROOT:-/host}
# Host directories searched for runc, runsc, Kata's shim and containerd.
SEARCH_PATH=${WARD_SEARCH_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/kata/bin}
WARD=${WARD:-/opt/ward/bin/ward}
# The readiness probe tests this file: it exists only once the node is
# really ready (handlers in containerd's configuration, doctor passing).
READY=${WARD_READY_FILE:-/tmp/ward-ready}
# ward's drop-in in each containerd layout ward install knows (containerd,
# k3s, RKE2, k0s): a change to any of them needs a restart.
DROP_INS="$HOST_ROOT/etc/containerd/conf.d/ward.toml
$HOST_ROOT/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/ward.toml
$HOST_ROOT/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.d/ward.toml
$HOST_ROOT/etc/k0s/containerd.d/ward.toml"
# The systemd units that restart containerd, from ward install's
# "containerd layout:" line (k3s, RKE2 and k0s run containerd themselves).
UNITS=containerd
: "${NODE_NAME:?NODE_NAME must be set (the DaemonSet sets it from spec.nodeName)}"

log() { printf 'ward-deploy: %s\n' "$*" >&2; }

# SIGTERM (a rollout, a drain, a deleted pod) never undoes anything on the
# host: a half-done install is finished by the next pod.
trap 'exit 0' TERM INT

# The host process whose mount namespace host commands run in. PID 1 on a
# node; where PID 1 cannot be entered (some VMs' and sandboxes' PID 1 is an
# agent whose namespaces even root cannot open), a process that lives in the
# host's mount namespace, such as containerd, named by a pid file on the host
# (a path on the host, read through $HOST_ROOT at each use: a restart
# changes the PID).
HOST_PID=${WARD_HOST_PID:-1}
HOST_PIDFILE=${WARD_HOST_PIDFILE:-}

host_pid() {
	pid=$HOST_PID
	what="WARD_HOST_PID"
	if [ -n "$HOST_PIDFILE" ]; then
		what="WARD_HOST_PIDFILE $HOST_PIDFILE"
		pid=
		if ! read -r pid 2>/dev/null <"$HOST_ROOT$HOST_PIDFILE"; then
			[ -n "$pid" ] || { log "$what: cannot read it on the host (at $HOST_ROOT$HOST_PIDFILE)"; return 1; }
		fi
	fi
	case $pid in
	'' | *[!0-9]* | 0)
		log "$what: \"$pid\" is not a process id"
		return 1
		;;
	esac
	if [ ! -d "/proc/$pid" ]; then
		log "$what: no process $pid on the host (the pod needs hostPID)"
		return 1
	fi
	if [ ! -e "/proc/$pid/ns/mnt" ]; then
		log "$what: process $pid's mount namespace cannot be entered; name a host process that can be (the chart's installer.hostProcess, e.g. containerd's pid file)"
		return 1
	fi
	printf '%s\n' "$pid"
}

# on_host runs a command in the host's mount namespace, which is all the
# host's commands need: its files (systemctl, containerd and their
# configuration), systemd's control sockets (files too), and the host's
# processes, which the pod sees already (hostPID). Entering no other
# namespace means no other must be openable.
on_host() {
	target=$(host_pid) || return 1
	nsenter --target "$target" --mount -- "$@"
}

restart_containerd() {
	# The first of the layout's units that is active (k3s or k3s-agent...).
	unit=
	for u in $UNITS; do
		if on_host systemctl is-active --quiet "$u"; then unit=$u; break; fi
	done
	unit=${unit:-${UNITS%% *}}
	log "restarting $unit on the host"
	# Running containers and their shims survive a containerd restart.
	on_host systemctl restart "$unit"
	on_host systemctl is-active --quiet "$unit" || {
		log "$unit is not active after the restart:"
		on_host systemctl status --no-pager "$unit" >&2 || true
		return 1
	}
}

label() { kubectl label node "$NODE_NAME" --overwrite "$@"; }

# write_policy puts the node policy the chart mounts ($WARD_NODE_POLICY, from
# a ConfigMap) in place as the host's /etc/ward/policy.yaml, if it loads
# and differs. The shims and ward-runtime read the new file at their next
# decision: nothing restarts. A policy that does not load is not written:
# the node keeps deciding by its current one.
write_policy() {
	[ -n "${WARD_NODE_POLICY:-}" ] || return 0
	if ! "$WARD" policy check "$WARD_NODE_POLICY" >&2; then
		log "the node policy $WARD_NODE_POLICY does not load; $NODE_NAME keeps its policy and the pod stays unready"
		return 1
	fi
	dst=$HOST_ROOT/etc/ward/policy.yaml
	if cmp -s "$WARD_NODE_POLICY" "$dst"; then
		return 0
	fi
	# One rename: a shim never reads half a policy.
	cp "$WARD_NODE_POLICY" "$dst.ward-deploy" && mv -f "$dst.ward-deploy" "$dst"
	log "node policy written to /etc/ward/policy.yaml"
}

digests() {
	printf '%s\n' "$DROP_INS" | while read -r f; do
		if [ -e "$f" ]; then sha256sum "$f"; fi
	done
}

# wait_forever keeps the pod running; SIGTERM ends it without touching the
# host (the wait is in the background so the signal is handled at once).
wait_forever() {
	sleeper=
	trap 'if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null; fi; exit 0' TERM INT
	sleep infinity &
	sleeper=$!
	wait "$sleeper"
}

# check_host_process stops the pod before it changes anything on the host
# when host commands could not be run (the pod fails and is retried).
check_host_process() {
	if ! host_pid >/dev/null; then
		log "nothing changed on $NODE_NAME"
		exit 1
	fi
}

install_ward() {
	rm -f "$READY"
	check_host_process
	before=$(digests)
	out=$("$WARD" install --root "$HOST_ROOT" --path "$SEARCH_PATH") || {
		printf '%s\n' "$out" >&2
		log "ward install failed; the pod stays unready"
		return 0
	}
	printf '%s\n' "$out"
	layout=$(printf '%s\n' "$out" | sed -n 's/^containerd layout: \([a-z0-9]*\) .*restarted by: systemctl restart \(.*\))$/\1:\2/p')
	if [ -n "$layout" ]; then
		UNITS=$(printf '%s' "${layout#*:}" | sed 's/ or / /g')
	fi
	if printf '%s\n' "$out" | grep -q '^ACTION NEEDED'; then
		# containerd would not read the drop-in: the handlers would not
		# exist, so the node must not say it has them.
		log "containerd's own configuration needs the change above; $NODE_NAME stays unlabelled and the pod unready"
		return 0
	fi
	# An upgrade that changes only ward's binaries needs no restart: each
	# new pod execs the new shim. Only a changed drop-in does.
	if [ "$before" != "$(digests)" ]; then
		restart_containerd
	else
		log "containerd's drop-in unchanged: containerd not restarted"
	fi
	# containerd's merged configuration (its root file and every import)
	# must name ward's handler, or pods asking for it would fail. k3s, RKE2
	# and k0s embed containerd and have no `containerd config dump`.
	if [ "${layout%%:*}" != containerd ]; then
		log "containerd layout ${layout%%:*}: its merged configuration cannot be dumped; relying on ward install's import check"
	elif ! on_host containerd config dump 2>/dev/null | grep -q 'runtimes\.ward\]'; then
		log "containerd's merged configuration has no ward handler; the pod stays unready"
		return 0
	fi
	if ! write_policy; then
		return 0
	fi
	# doctor looks for runtimes on --path as given, so the host's
	# directories are named as this pod sees them.
	host_path=$(printf '%s' "$SEARCH_PATH" | sed "s|[^:][^:]*|$HOST_ROOT&|g")
	if ! "$WARD" doctor --root "$HOST_ROOT" --path "$host_path"; then
		log "ward doctor reports a FAIL (above); $NODE_NAME stays unlabelled and the pod unready"
		return 0
	fi
	label ward.dev/installed=true
	if [ -e "$HOST_ROOT/etc/ward/ward-gvisor.yaml" ]; then
		label ward.dev/gvisor=true
	fi
	if [ -e "$HOST_ROOT/etc/ward/ward-kata.yaml" ]; then
		label ward.dev/kata=true
	fi
	touch "$READY"
	log "$("$WARD" --version) installed on $NODE_NAME"
}

uninstall_ward() {
	rm -f "$READY"
	check_host_process
	# Unlabel first, so that the scheduler stops sending ward pods here.
	kubectl label node "$NODE_NAME" ward.dev/installed- ward.dev/gvisor- ward.dev/kata- >/dev/null 2>&1 || true
	if [ -e "$HOST_ROOT/var/lib/ward/install.json" ]; then
		# Which units restart containerd on this node, as install saw it.
		layout=$("$WARD" install --dry-run --root "$HOST_ROOT" --path "$SEARCH_PATH" 2>/dev/null |
			sed -n 's/^containerd layout: .*restarted by: systemctl restart \(.*\))$/\1/p') || true
		if [ -n "$layout" ]; then UNITS=$(printf '%s' "$layout" | sed 's/ or / /g'); fi
		"$WARD" uninstall --root "$HOST_ROOT"
		restart_containerd
	fi
	touch "$READY"
	log "ward removed from $NODE_NAME"
}

case "${1:-install}" in
install)
	install_ward
	wait_forever
	;;
uninstall)
	uninstall_ward
	wait_forever
	;;
*)
	log "usage: ward-deploy.sh [install|uninstall]"
	exit 2
	;;
esac
