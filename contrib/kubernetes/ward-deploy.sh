#!/bin/sh
# ward-deploy.sh: what ward's DaemonSet (ward-deploy.yaml) runs on each node.
#
#   ward-deploy.sh           install ward on the host, restart containerd,
#                            label the node, then wait; on SIGTERM, clean up
#   ward-deploy.sh cleanup   unlabel the node, uninstall, restart containerd
#                            (the pod's preStop hook; safe to run twice)
#
# The host's / is mounted at $WARD_HOST_ROOT (default /host); the pod runs
# privileged with hostPID, so PID 1 is the host's init and nsenter into its
# namespaces reaches the host's systemd. NODE_NAME comes from the downward API.
set -eu

HOST_ROOT=${WARD_HOST_ROOT:-/host}
# Host directories searched for runc, runsc and Kata's shim.
SEARCH_PATH=${WARD_SEARCH_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/kata/bin}
WARD=${WARD:-/opt/ward/bin/ward}
: "${NODE_NAME:?NODE_NAME must be set (the DaemonSet sets it from spec.nodeName)}"

log() { printf 'ward-deploy: %s\n' "$*" >&2; }

# on_host runs a command in the host's namespaces (PID 1's).
on_host() { nsenter --target 1 --mount --uts --ipc --net --pid -- "$@"; }

restart_containerd() {
	log "restarting containerd on the host"
	# Running containers and their shims survive a containerd restart.
	on_host systemctl restart containerd
	on_host systemctl is-active --quiet containerd || {
		log "containerd is not active after the restart:"
		on_host systemctl status --no-pager containerd >&2 || true
		return 1
	}
}

label() { kubectl label node "$NODE_NAME" --overwrite "$@"; }

install_ward() {
	out=$("$WARD" install --root "$HOST_ROOT" --path "$SEARCH_PATH") || {
		printf '%s\n' "$out" >&2
		log "ward install failed"
		return 1
	}
	printf '%s\n' "$out"
	if printf '%s\n' "$out" | grep -q '^ACTION NEEDED'; then
		# containerd would not read the drop-in: the handlers would not
		# exist, so the node must not say it has them.
		log "containerd's own configuration needs the change above; not labelling $NODE_NAME"
		return 0
	fi
	restart_containerd
	# doctor looks for runtimes on --path as given, so the host's
	# directories are named as this pod sees them.
	host_path=$(printf '%s' "$SEARCH_PATH" | sed "s|[^:][^:]*|$HOST_ROOT&|g")
	"$WARD" doctor --root "$HOST_ROOT" --path "$host_path" || log "ward doctor reports problems (above); the node is labelled anyway"
	label ward.dev/installed=true
	if [ -e "$HOST_ROOT/etc/ward/shim-gvisor.yaml" ]; then
		label ward.dev/gvisor=true
	fi
	if [ -e "$HOST_ROOT/etc/ward/shim-kata.yaml" ]; then
		label ward.dev/kata=true
	fi
	log "ward installed on $NODE_NAME"
}

cleanup() {
	# Unlabel first, so that the scheduler stops sending sandboxed pods here.
	kubectl label node "$NODE_NAME" ward.dev/installed- ward.dev/gvisor- ward.dev/kata- >/dev/null 2>&1 || true
	if [ -e "$HOST_ROOT/var/lib/ward/install.json" ]; then
		"$WARD" uninstall --root "$HOST_ROOT"
		restart_containerd
	fi
	log "ward removed from $NODE_NAME"
}

case "${1:-install}" in
install)
	trap 'cleanup; exit 0' TERM INT
	install_ward
	# Wait in the background so that the trap runs as soon as the signal
	# arrives (a foreground sleep would delay it).
	sleep infinity &
	wait $!
	;;
cleanup)
	cleanup
	;;
*)
	log "usage: ward-deploy.sh [install|cleanup]"
	exit 2
	;;
esac
