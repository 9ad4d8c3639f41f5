#!/usr/bin/env bash
# demo.sh — ward's main job in two minutes (`make demo`, as root, on Debian 12).
#
# Installs what it needs (integration/install-deps.sh: containerd v2.4.2, runc,
# runsc, crictl, CNI plugins), starts a PRIVATE containerd (everything under one
# mktemp -d directory in /var/tmp, its own sockets, a private CNI bridge on
# 198.51.100.0/24) with ward registered as the CRI runtime handler "ward", and
# runs three pods through it, as a kubelet would:
#
#   ordinary    -> hardened on runc: seccomp on, no_new_privs, fewer capabilities
#   privileged  -> rejected: crictl shows the finding IDs and the rule
#   sys-admin   -> CAP_SYS_ADMIN: sent to gVisor (the container sees gVisor's kernel)
#
# It shows from inside each container what ward did, prints ward's decision
# table (from the shim's decision log), and removes everything it created.
#
#   WARD_DEPS_BIN  where the tools are (default /opt/ward-deps/bin)
#   WARD_DEMO_SKIP_DEPS=1  do not run install-deps.sh
#   WARD_DEMO_KEEP=1       keep the temporary directory (after cleanup of mounts)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
BIN=${WARD_DEPS_BIN:-/opt/ward-deps/bin}
WARD_BIN=${WARD_BIN:-$REPO/bin}
SUBNET=198.51.100.0/24
BRIDGE=warddemo0
NS=ward-demo

exec 3>&2
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&3; }
log() { printf '[demo] %s\n' "$*" >&3; }
die() {
	log "FATAL: $*"
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (containerd, mounts, network namespaces): sudo make demo"
[[ -x $WARD_BIN/containerd-shim-ward-v2 ]] || die "$WARD_BIN/containerd-shim-ward-v2 missing: run make build"

if [[ -z ${WARD_DEMO_SKIP_DEPS:-} ]]; then
	say "installing the pinned tools (first run builds them: a few minutes)"
	WARD_DEPS_BIN=$BIN "$REPO/integration/install-deps.sh" apt containerd runc crictl cni runsc
fi
for b in containerd ctr containerd-shim-runc-v2 runc runsc crictl cni/bridge; do
	[[ -x $BIN/$b ]] || die "$BIN/$b missing: run integration/install-deps.sh"
done
ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists: is another demo running?"

TMP=$(mktemp -d /var/tmp/ward-demo.XXXX)
# Searchable by all, like containerd's own root and state (0711): container
# root, mapped to an unprivileged host ID, must reach its bundle.
chmod 711 "$TMP"
CD=$TMP/containerd
SOCK=$CD/containerd.sock
WARD_STATE=$TMP/ward
mkdir -p "$CD"/{root,state,temp} "$TMP"/{s,opt,runc,cni/net.d,cni/ipam,pods,log} "$WARD_STATE"
CONTAINERD_PID=
NETNS=()
KUBEPODS_EXISTED=()
for h in /sys/fs/cgroup/*/; do [[ -d ${h}kubepods ]] && KUBEPODS_EXISTED+=("${h}kubepods"); done
POD_UIDS=()

crictl_() { "$BIN/crictl" --config "$TMP/crictl.yaml" "$@"; }
ctr_() { "$BIN/ctr" --address "$SOCK" "$@"; }
mounts_under() { awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	say "cleaning up"
	if [[ -n $CONTAINERD_PID ]] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
		for id in $(crictl_ pods -q 2>/dev/null); do
			# Only our pods' network namespaces: other pods may run here.
			NETNS+=("$(crictl_ inspectp -o go-template --template \
				'{{range .info.runtimeSpec.linux.namespaces}}{{if eq .type "network"}}{{.path}}{{end}}{{end}}' "$id" 2>/dev/null)")
			crictl_ stopp "$id" >/dev/null 2>&1
			crictl_ rmp -f "$id" >/dev/null 2>&1
		done
		kill -TERM "$CONTAINERD_PID"
		for _ in $(seq 50); do
			kill -0 "$CONTAINERD_PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$CONTAINERD_PID" 2>/dev/null
		wait "$CONTAINERD_PID" 2>/dev/null
	fi
	# Shims, runc inits and gVisor sandboxes started from this directory: by
	# pid, found by the paths in their command lines.
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$TMP/" && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	sleep 0.3
	local m
	for m in $(mounts_under "$TMP"); do umount "$m" 2>/dev/null || umount -l "$m"; done
	local ns
	for ns in "${NETNS[@]}"; do
		[[ $ns == /var/run/netns/* && -e $ns ]] || continue
		umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null
		rm -f "$ns"
	done
	ip link del "$BRIDGE" 2>/dev/null
	# The demo's node-wide eBPF sensor stays pinned in bpffs after every
	# process is gone (docs/sensors.md): unpin it. Its directory is named by
	# the state directory's SHA-256 (internal/sensor.instanceDir).
	local pin
	pin=/sys/fs/bpf/ward/$(printf %s "$WARD_STATE" | sha256sum | cut -c1-16)
	[[ -d $pin ]] && rm -rf "$pin"
	rmdir /sys/fs/bpf/ward 2>/dev/null
	local h u
	for h in /sys/fs/cgroup/*/; do
		for u in "${POD_UIDS[@]}"; do
			[[ -d ${h}kubepods/besteffort/pod$u ]] && find "${h}kubepods/besteffort/pod$u" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
		[[ " ${KUBEPODS_EXISTED[*]} " == *" ${h}kubepods "* ]] || find "${h}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	if [[ -z $(mounts_under "$TMP") ]]; then
		[[ -n ${WARD_DEMO_KEEP:-} ]] && log "kept $TMP" || rm -rf "$TMP"
	else
		log "mounts remain under $TMP; not removing it"
		rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ward's node configuration (docs/configuration.md) -------------------------------
# The default policy maps every hardened container into a user namespace from
# the "ward" entry of /etc/subuid and /etc/subgid, which `ward install` writes
# on a node; the demo keeps its own pool and allocator under $TMP instead of
# touching this machine's files.
printf 'ward:%d:%d\n' $((0x50000000)) $((100 * 65536)) >"$TMP/subid"
cat >"$TMP/ward.yaml" <<EOT
# The embedded default policy; decisions and per-pod state under stateDir.
stateDir: $WARD_STATE
backends:
  runc: {binary: $BIN/runc}
  gvisor: {binary: $BIN/runsc}
userns:
  subuid: $TMP/subid
  subgid: $TMP/subid
  stateDir: $TMP/userns
EOT

# --- containerd ----------------------------------------------------------------------
cat >"$TMP/cni/net.d/10-ward-demo.conflist" <<EOT
{"cniVersion":"1.0.0","name":"ward-demo","plugins":[{"type":"bridge","bridge":"$BRIDGE","isGateway":false,"ipMasq":false,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"$SUBNET"}]],"dataDir":"$TMP/cni/ipam"}}]}
EOT
cat >"$CD/config.toml" <<EOT
version = 3
root = "$CD/root"
state = "$CD/state"
temp = "$CD/temp"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$CD/debug.sock"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$TMP/opt"
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = "$TMP/s"
  [plugins."io.containerd.nri.v1.nri"]
    disable = true
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "ward.test/pause:1"
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "ward"
      # ward: containerd's runc shim with ward in front of Create and Exec.
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ward]
        runtime_type = "io.containerd.runc.v2"
        runtime_path = "$WARD_BIN/containerd-shim-ward-v2"
        pod_annotations = ["ward.dev/*"]
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ward.options]
          BinaryName = "$BIN/runc"
          Root = "$TMP/runc"
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$BIN/cni"]
      conf_dir = "$TMP/cni/net.d"
      max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOT
cat >"$TMP/crictl.yaml" <<EOT
runtime-endpoint: unix://$SOCK
image-endpoint: unix://$SOCK
timeout: 60
pull-image-on-create: false
EOT

say "starting a private containerd with the 'ward' runtime handler ($TMP)"
WARD_CONFIG=$TMP/ward.yaml PATH="$BIN:$PATH" "$BIN/containerd" --config "$CD/config.toml" >"$TMP/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 100); do
	ctr_ version >/dev/null 2>&1 && break
	kill -0 "$CONTAINERD_PID" 2>/dev/null || die "containerd exited: $(tail -n 20 "$TMP/containerd.log")"
	sleep 0.2
done
"$REPO/integration/image/build-busybox.sh" "$TMP/images" >/dev/null
for img in busybox pause; do ctr_ -n k8s.io images import "$TMP/images/$img.tar" >/dev/null 2>&1; done
for _ in $(seq 50); do crictl_ inspecti ward.test/pause:1 >/dev/null 2>&1 && break; sleep 0.2; done

# --- pods --------------------------------------------------------------------------------
# pod NAME PRIVILEGED CAPS_JSON: writes the kubelet-like CRI JSON for a pod and
# its one container (seccomp Unconfined, kubelet's default).
pod() {
	local name=$1 priv=$2 caps=$3 uid
	uid=$(cat /proc/sys/kernel/random/uuid)
	POD_UIDS+=("$uid")
	jq -n --arg n "$name" --arg ns "$NS" --arg uid "$uid" --arg logs "$TMP/log/$name" --argjson priv "$priv" '{
		metadata: {name: $n, namespace: $ns, uid: $uid}, hostname: $n, log_directory: $logs,
		linux: {cgroup_parent: ("/kubepods/besteffort/pod" + $uid),
			security_context: {privileged: $priv, seccomp: {profile_type: 1}, namespace_options: {pid: 1}}}
	}' >"$TMP/pods/$name-pod.json"
	# The kubelet sends its default masked and read-only /proc and /sys paths
	# (none for a privileged container); containerd applies only those.
	jq -n --argjson priv "$priv" --argjson caps "$caps" '{
		metadata: {name: "app"}, image: {image: "ward.test/busybox:1"}, command: ["sleep", "3600"], log_path: "app.log",
		linux: {security_context: ({privileged: $priv, seccomp: {profile_type: 1}, namespace_options: {pid: 1}}
			+ (if $caps == [] then {} else {capabilities: {add_capabilities: $caps}} end)
			+ (if $priv then {} else {
				masked_paths: ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
					"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"],
				readonly_paths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]} end))}
	}' >"$TMP/pods/$name-container.json"
}

# run NAME: runp + create + start; prints the container id, or the error.
run() {
	local name=$1 sb ctr
	if ! sb=$(crictl_ runp --runtime ward "$TMP/pods/$name-pod.json" 2>"$TMP/pods/$name.err"); then
		return 1
	fi
	ctr=$(crictl_ create "$sb" "$TMP/pods/$name-container.json" "$TMP/pods/$name-pod.json" 2>"$TMP/pods/$name.err") || return 1
	crictl_ start "$ctr" >/dev/null 2>"$TMP/pods/$name.err" || return 1
	echo "$ctr"
}

# table: tab-separated lines as aligned columns (column(1) is not in a
# minimal Debian).
table() {
	awk -F'\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
		END { for (r = 1; r <= n; r++) { line = ""; for (i = 1; i <= nf; i++) line = line sprintf("%-" w[i] + 2 "s", cell[r, i]); sub(/ +$/, "", line); print line } }'
}

show_status() {
	crictl_ exec "$1" grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/1/status | sed 's/^/    /'
}

say "1. an ordinary pod (what a Deployment with no securityContext sends)"
pod ordinary false '[]'
c=$(run ordinary) || die "ordinary pod failed: $(cat "$TMP/pods/ordinary.err")"
echo "  inside the container, /proc/1/status:"
show_status "$c"
echo "  inside the container, /proc/self/uid_map (container ID, host ID, count):"
crictl_ exec "$c" cat /proc/self/uid_map | sed 's/^ */    /'
echo "  -> hardened on runc: ward's seccomp filter (Seccomp: 2), no_new_privs, CAP_NET_RAW dropped,"
echo "     and a user namespace: container root is an unprivileged host ID"
echo "     (plain runc would show Seccomp: 0, NoNewPrivs: 0, CapEff: 00000000a80425fb, uid_map 0 0 4294967295)"

say "2. a privileged pod (securityContext.privileged: true)"
pod privileged true '[]'
if c=$(run privileged); then
	die "the privileged pod started; ward should have rejected it"
fi
echo "  crictl says:"
grep -o 'desc = .*' "$TMP/pods/privileged.err" | head -n 1 | sed 's/" containerID=.*//' | fold -w 100 -s | sed 's/^/    /'
echo "  -> rejected: the error names the findings and the rule"

say "3. a pod whose container adds CAP_SYS_ADMIN"
pod sys-admin false '["SYS_ADMIN"]'
c=$(run sys-admin) || die "sys-admin pod failed: $(cat "$TMP/pods/sys-admin.err")"
echo "  inside the container, dmesg:"
crictl_ exec "$c" dmesg | head -n 3 | sed 's/^/    /'
echo "  inside the container, uname -r: $(crictl_ exec "$c" uname -r) (the host runs $(uname -r))"
echo "  -> sent to gVisor: the container's system calls reach gVisor's kernel, not the host's"

say "ward's decisions ($WARD_STATE/decisions.jsonl, one JSON line each)"
{
	printf 'POD\tKIND\tACTION\tBACKEND\tRULE\tDECIDING FINDINGS\tCHANGES\tFINDINGS\n'
	jq -r 'def list: unique | join(",") | if . == "" then "-" else . end;
		select(.event == "create") | [
		.workload.pod, .workload.kind, .action, .backend, (.rule // "-"),
		([.findings[] | select(.ward | test("^(rejected|sandboxed)")) | .id] | list),
		([(.changes // [])[] | .step] | list),
		(.findings | length | tostring)
	] | @tsv' "$WARD_STATE/decisions.jsonl"
} | table
echo
echo "  Every line also carries the findings with their ATT&CK techniques and"
echo "  references (PSS, CIS, Kyverno), e.g. the rejected container's techniques:"
jq -r 'select(.action == "reject") | "    " + (.attack | join(" "))' "$WARD_STATE/decisions.jsonl"
