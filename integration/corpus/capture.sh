#!/usr/bin/env bash
# capture.sh — regenerate testdata/corpus: real OCI runtime specs (config.json)
# written by real tools, captured on their way to runc.
#
#   sudo integration/corpus/capture.sh            # all cases
#   sudo integration/corpus/capture.sh cri-hostpid runc-spec   # only some
#
# What it does:
#   * starts a PRIVATE containerd (every path, socket and state dir under a
#     mktemp -d root in /var/tmp) with a CRI runtime handler "capture" whose
#     runc binary is a small wrapper: on `runc create` it copies the bundle's
#     config.json aside, then execs the real runc, so the pod really starts;
#   * runs kubelet-like pods through crictl, one per case, and keeps the
#     sandbox (pause) spec and the app container spec of each;
#   * also keeps `runc spec`, `runc spec --rootless` and two `ctr run` specs;
#   * writes testdata/corpus/<case>/{config.json | sandbox.json,container.json}
#     plus meta.json, then tears everything down (a trap does this on failure
#     too).
#
# Needs root and the binaries from integration/install-deps.sh
# (WARD_DEPS_BIN, default /opt/ward-deps/bin), busybox-static and jq.
# Output dir: WARD_CORPUS_OUT (default <repo>/testdata/corpus).

# jq filters below are single-quoted on purpose ($uid etc. are jq variables).
# shellcheck disable=SC2016
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
BIN=${WARD_DEPS_BIN:-/opt/ward-deps/bin}
OUT=${WARD_CORPUS_OUT:-$REPO_ROOT/testdata/corpus}

# Must match integration/install-deps.sh; checked against its stamp files.
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.4.4
CRICTL_VERSION=v1.37.0
CNI_PLUGINS_VERSION=v1.10.0

CNI_NET_NAME=ward-corpus
CNI_BRIDGE=wardcni0
# TEST-NET-2 (RFC 5737), documentation-only: never this host's own network.
CNI_SUBNET=198.51.100.0/24
K8S_NAMESPACE=ward-corpus
BUSYBOX_IMAGE=ward.test/busybox:1
PAUSE_IMAGE=ward.test/pause:1

ALL_CASES=(
	runc-spec runc-spec-rootless ctr-run ctr-run-privileged
	cri-ordinary cri-privileged cri-hostpid cri-hostnetwork cri-hostipc
	cri-docker-sock cri-hostpath-root cri-cap-sys-admin cri-unsafe-sysctl
	cri-nonroot-seccomp cri-untrusted cri-mixed-init-gvisor cri-mixed-sidecar-reject
)

# Log to a saved copy of stderr: a trap may fire while a function call's own
# 2>file redirection is in effect, and cleanup's messages must not land there.
exec 3>&2
log() { printf '[capture %s] %s\n' "$(date +%T)" "$*" >&3; }
die() {
	log "FATAL: $*"
	exit 1
}

# --- preflight -----------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "must run as root (containerd, mounts, netns)"
for b in containerd ctr containerd-shim-runc-v2 runc crictl; do
	[[ -x $BIN/$b ]] || die "$BIN/$b missing: run integration/install-deps.sh"
done
for s in containerd-"$CONTAINERD_VERSION" runc-"$RUNC_VERSION" crictl-"$CRICTL_VERSION"; do
	[[ -f $BIN/.stamp-$s ]] || die "$BIN is not at the pinned version ($s): run integration/install-deps.sh"
done
for p in bridge host-local loopback; do
	[[ -f $BIN/cni/.stamp-$p-$CNI_PLUGINS_VERSION ]] || die "CNI plugin $p $CNI_PLUGINS_VERSION missing: run integration/install-deps.sh cni"
done
command -v jq >/dev/null || die "jq missing: run integration/install-deps.sh apt"
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && die "bridge $CNI_BRIDGE already exists (another capture running? delete it first)"

cases=("$@")
((${#cases[@]})) || cases=("${ALL_CASES[@]}")
for c in "${cases[@]}"; do
	[[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case $c (known: ${ALL_CASES[*]})"
done

CAPTURED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# "runc version 1.4.4, spec 1.3.0, libseccomp 2.5.4"
RUNC_VERSION_LINE=$("$BIN/runc" --version | grep -E '^(runc|spec|libseccomp)' | paste -sd, - | sed 's/,/, /g; s/: / /g')

# --- private temp root -------------------------------------------------------------
# Under /var/tmp (a disk, not a tmpfs) because overlayfs snapshots live here.
TMP=$(mktemp -d /var/tmp/ward-corpus.XXXX)
CD_DIR=$TMP/containerd
CD_ROOT=$CD_DIR/root
CD_STATE=$CD_DIR/state
CD_SOCK=$CD_DIR/containerd.sock
RUNC_ROOT=$TMP/runc
CAPTURE_DIR=$TMP/capture
KUBELET_ROOT=$TMP/kubelet
POD_LOG_ROOT=$TMP/log/pods
CNI_CONF_DIR=$TMP/cni/net.d
WRAPPER=$TMP/bin/runc-capture
mkdir -p "$CD_ROOT" "$CD_STATE" "$CD_DIR/temp" "$RUNC_ROOT" "$CAPTURE_DIR" \
	"$KUBELET_ROOT/pods" "$POD_LOG_ROOT" "$CNI_CONF_DIR" "$TMP/cni/ipam" "$TMP/bin" "$TMP/opt" "$TMP/s"

CONTAINERD_PID=
POD_IDS=()
POD_UIDS=()
CREATED_DOCKER_SOCK=
DOCKER_SOCK_NOTE=
NETNS_BEFORE=$(ls /var/run/netns 2>/dev/null || true)
CNI_CACHE_EXISTED=0
[[ -e /var/lib/cni ]] && CNI_CACHE_EXISTED=1
# Top-level cgroup dirs that the runc specs below create (kubelet-style
# parents for CRI pods, ctr's /<namespace> parent). Removed at the end only if
# they did not exist before and are empty.
CGROUP_TOPS=(kubepods default)
declare -A CGROUP_PREEXIST=()
for h in /sys/fs/cgroup/*/; do
	for t in "${CGROUP_TOPS[@]}"; do
		[[ -d $h$t ]] && CGROUP_PREEXIST[$h$t]=1
	done
done

crictl_() { "$BIN/crictl" --config "$TMP/crictl.yaml" --runtime-endpoint "unix://$CD_SOCK" --image-endpoint "unix://$CD_SOCK" "$@"; }
ctr_() { "$BIN/ctr" --address "$CD_SOCK" "$@"; }

# --- cleanup (trap) -----------------------------------------------------------------
# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
	awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	log "cleanup (exit status $rc)"
	if [[ -n $CONTAINERD_PID ]] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
		local id
		for id in "${POD_IDS[@]}"; do
			crictl_ stopp "$id" >/dev/null 2>&1
			crictl_ rmp -f "$id" >/dev/null 2>&1
		done
		# Anything a failed `ctr run` left behind.
		for id in $(ctr_ containers ls -q 2>/dev/null); do
			ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1
			sleep 0.2
			ctr_ tasks delete -f "$id" >/dev/null 2>&1
			ctr_ containers delete "$id" >/dev/null 2>&1
		done
		kill -TERM "$CONTAINERD_PID"
		for _ in $(seq 50); do
			kill -0 "$CONTAINERD_PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$CONTAINERD_PID" 2>/dev/null
		wait "$CONTAINERD_PID" 2>/dev/null
	fi
	# Shims and container processes outlive containerd. Stop the ones this run
	# started, by the pids they recorded in their bundles under our state dir.
	local f pid
	while IFS= read -r f; do
		pid=$(cat "$f" 2>/dev/null) || continue
		[[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
	done < <(find "$CD_STATE" -name '*.pid' 2>/dev/null)
	sleep 0.3
	# Leftover mounts (rootfs overlays, sandbox /dev/shm) under the temp root.
	local m
	for m in $(mounts_under "$TMP"); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# Network namespaces the CRI plugin pinned under /var/run/netns for our pods.
	local nsp ns
	for nsp in /var/run/netns/cni-*; do
		[[ -e $nsp ]] || continue
		ns=${nsp##*/}
		grep -qxF "$ns" <<<"$NETNS_BEFORE" && continue
		umount "/var/run/netns/$ns" 2>/dev/null || umount -l "/var/run/netns/$ns" 2>/dev/null
		rm -f "/var/run/netns/$ns"
	done
	[[ -z $NETNS_BEFORE ]] && rmdir /var/run/netns 2>/dev/null
	ip link del "$CNI_BRIDGE" 2>/dev/null
	# libcni's result cache (default /var/lib/cni).
	if ((CNI_CACHE_EXISTED)); then
		rm -f /var/lib/cni/results/"$CNI_NET_NAME"-* 2>/dev/null
	else
		rm -rf /var/lib/cni
	fi
	# Empty cgroup parents left by runc (it removes only the leaf).
	local h t u
	for h in /sys/fs/cgroup/*/; do
		# Our pods' own parents, even where a kubepods tree existed before.
		for u in "${POD_UIDS[@]}"; do
			[[ -d ${h}kubepods/besteffort/pod$u ]] && find "${h}kubepods/besteffort/pod$u" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
		for t in "${CGROUP_TOPS[@]}"; do
			[[ -d $h$t && -z ${CGROUP_PREEXIST[$h$t]:-} ]] || continue
			find "$h$t" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	done
	[[ -n $CREATED_DOCKER_SOCK ]] && rm -f "$CREATED_DOCKER_SOCK"
	# Never rm -rf across a mount: a bind of / would take the host with it.
	if [[ -z $(mounts_under "$TMP") ]]; then
		if [[ -n ${WARD_CORPUS_KEEP_TMP:-} ]]; then
			log "keeping $TMP (WARD_CORPUS_KEEP_TMP set)"
		else
			rm -rf "$TMP"
		fi
	else
		log "mounts remain under $TMP, NOT removing it:"
		mounts_under "$TMP" >&2
		rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the capturing runc wrapper ---------------------------------------------------------
# containerd's runc shim calls BinaryName with runc's own command line, e.g.
#   runc --root R --log L --log-format json create --bundle B --pid-file P ID
# On create, copy B/config.json (the spec exactly as the runtime gets it) to
# $CAPTURE_DIR/ID.json; every call then goes to the real runc unchanged.
cat >"$WRAPPER" <<EOF
#!/bin/sh
# Generated by integration/corpus/capture.sh; deleted with its temp dir.
capture_dir='$CAPTURE_DIR'
real_runc='$BIN/runc'
EOF
cat >>"$WRAPPER" <<'EOF'
create=0 bundle= id= prev=
for a in "$@"; do
	case "$prev" in --bundle | -b) bundle=$a ;; esac
	case "$a" in
	create) create=1 ;;
	--bundle=*) bundle=${a#--bundle=} ;;
	esac
	prev=$a
	id=$a # the container id is runc's last argument
done
if [ "$create" = 1 ]; then
	[ -n "$bundle" ] || bundle=$PWD
	cp "$bundle/config.json" "$capture_dir/$id.json"
	printf '%s\n' "$*" >>"$capture_dir/invocations.log"
fi
exec "$real_runc" "$@"
EOF
chmod 0755 "$WRAPPER"

# --- pretty-print a captured spec without changing its content ---------------------------
# jq 1.6 (Debian 12) stores numbers as float64, which would round integers
# above 2^53; such a spec is copied byte for byte instead.
store_spec() {
	local src=$1 dst=$2
	if grep -Eq '[0-9]{16,}' "$src"; then
		cp "$src" "$dst"
	else
		jq . "$src" >"$dst"
	fi
}

# write_meta CASE TOOL VERSION NOTES [extra-json]
write_meta() {
	local case=$1 tool=$2 version=$3 notes=$4 extra=${5:-"{}"}
	jq -n --arg tool "$tool" --arg version "$version" --arg captured "$CAPTURED" \
		--arg root "$CD_ROOT" --arg state "$CD_STATE" --arg kubelet "$KUBELET_ROOT" \
		--arg tmp "$TMP" --arg runc "$RUNC_ROOT" --arg notes "$notes" --argjson extra "$extra" '{
			tool: $tool, version: $version, captured: $captured,
			containerdRoot: $root, containerdState: $state, kubeletRoot: $kubelet,
			notes: $notes, tempRoot: $tmp, runcRoot: $runc, netnsDir: "/var/run/netns"
		} + $extra' >"$OUT/$case/meta.json"
}

want() { [[ " ${cases[*]} " == *" $1 "* ]]; }
mkdir -p "$OUT"

# --- runc spec --------------------------------------------------------------------------
# capture_runc_spec CASE UID [runc spec flags]
# `runc spec --rootless` maps the calling user's uid/gid: run it as an
# unprivileged uid (1000, like a first desktop user) so the mappings look like
# a real rootless setup, not root's identity mapping.
capture_runc_spec() {
	local case=$1 uid=$2 d cmd
	shift 2
	cmd="runc spec${*:+ $*}"
	d=$(mktemp -d "$TMP/runc-spec.XXXX")
	chown "$uid:$uid" "$d"
	(cd "$d" && setpriv --reuid="$uid" --regid="$uid" --clear-groups "$BIN/runc" spec "$@")
	rm -rf "${OUT:?}/$case" && mkdir -p "$OUT/$case"
	store_spec "$d/config.json" "$OUT/$case/config.json"
	write_meta "$case" "$cmd" "$RUNC_VERSION_LINE" \
		"Template written by \`$cmd\` (run as uid/gid $uid) in an empty directory; not a runtime-generated spec (rootfs is the relative path \"rootfs\")." \
		'{"containerdRoot": "", "containerdState": "", "kubeletRoot": "", "tempRoot": "", "runcRoot": "", "netnsDir": ""}'
	log "captured $case"
}
want runc-spec && capture_runc_spec runc-spec 0
want runc-spec-rootless && capture_runc_spec runc-spec-rootless 1000 --rootless

# Are any containerd cases wanted?
need_containerd=0
for c in "${cases[@]}"; do [[ $c == ctr-* || $c == cri-* ]] && need_containerd=1; done
((need_containerd)) || {
	log "done (no containerd cases)"
	exit 0
}

# --- images -------------------------------------------------------------------------------
"$REPO_ROOT/integration/image/build-busybox.sh" "$TMP/images" >&2

# --- CNI ------------------------------------------------------------------------------------
# A private bridge with host-local IPAM on TEST-NET-2; no gateway, no masquerade:
# pods only need an interface for the CRI plugin to accept the network.
jq -n --arg name "$CNI_NET_NAME" --arg br "$CNI_BRIDGE" --arg subnet "$CNI_SUBNET" \
	--arg data "$TMP/cni/ipam" '{
		cniVersion: "1.0.0",
		name: $name,
		plugins: [{
			type: "bridge", bridge: $br, isGateway: false, ipMasq: false, hairpinMode: false,
			ipam: {type: "host-local", ranges: [[{subnet: $subnet}]], dataDir: $data}
		}]
	}' >"$CNI_CONF_DIR/10-$CNI_NET_NAME.conflist"

# --- containerd config ------------------------------------------------------------------------
cat >"$CD_DIR/config.toml" <<EOF
# Private containerd for ward's corpus capture (integration/corpus/capture.sh).
version = 3
root = "$CD_ROOT"
state = "$CD_STATE"
temp = "$CD_DIR/temp"

[grpc]
  address = "$CD_SOCK"
[ttrpc]
  address = "$CD_DIR/containerd.sock.ttrpc"
[debug]
  address = "$CD_DIR/debug.sock"
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$TMP/opt"
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = "$TMP/s"
  # NRI plugins could rewrite specs; keep them out of the capture.
  [plugins."io.containerd.nri.v1.nri"]
    disable = true

  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      # Local busybox-based pause image; nothing is ever pulled.
      sandbox = "$PAUSE_IMAGE"

  [plugins."io.containerd.cri.v1.runtime"]
    # Root lacks CAP_SYS_RESOURCE here: the sandbox asks for oom_score_adj -998
    # otherwise, which runc cannot set.
    restrict_oom_score_adj = true
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "capture"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.capture]
        runtime_type = "io.containerd.runc.v2"
        pod_annotations = ["ward.dev/*"]
        container_annotations = ["ward.dev/*"]
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.capture.options]
          BinaryName = "$WRAPPER"
          Root = "$RUNC_ROOT"
          SystemdCgroup = false
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$BIN/cni"]
      conf_dir = "$CNI_CONF_DIR"
      max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOF

cat >"$TMP/crictl.yaml" <<EOF
runtime-endpoint: unix://$CD_SOCK
image-endpoint: unix://$CD_SOCK
timeout: 60
debug: false
pull-image-on-create: false
EOF

# --- start containerd ------------------------------------------------------------------------------
# The shim binary is looked up on containerd's PATH: ours must come first
# (v2.3+ shims speak the protobuf BootstrapParams start protocol).
log "starting containerd $CONTAINERD_VERSION (root $TMP)"
PATH="$BIN:$PATH" "$BIN/containerd" --config "$CD_DIR/config.toml" >"$TMP/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 100); do
	ctr_ version >/dev/null 2>&1 && break
	kill -0 "$CONTAINERD_PID" 2>/dev/null || {
		tail -n 30 "$TMP/containerd.log" >&2
		die "containerd exited"
	}
	sleep 0.2
done
ctr_ version >/dev/null 2>&1 || die "containerd did not come up; see $TMP/containerd.log"
# `containerd --version` of a `go install` build says "2.4.2+unknown" (no
# git revision); record the pinned tag after checking the binary agrees.
[[ $("$BIN/containerd" --version) == *" ${CONTAINERD_VERSION#v}"* ]] || die "containerd binary is not $CONTAINERD_VERSION"
CONTAINERD_VERSION_LINE="containerd $CONTAINERD_VERSION"

for img in busybox pause; do
	ctr_ -n k8s.io images import "$TMP/images/$img.tar" >/dev/null
done
ctr_ -n default images import "$TMP/images/busybox.tar" >/dev/null
# The CRI image store is fed by containerd events; wait until it sees both.
for _ in $(seq 50); do
	crictl_ inspecti "$BUSYBOX_IMAGE" >/dev/null 2>&1 && crictl_ inspecti "$PAUSE_IMAGE" >/dev/null 2>&1 && break
	sleep 0.2
done
crictl_ inspecti "$PAUSE_IMAGE" >/dev/null || die "CRI does not see $PAUSE_IMAGE"

# --- ctr run ---------------------------------------------------------------------------------------
capture_ctr_run() {
	local case=$1
	shift
	log "ctr run $case"
	rm -f "$CAPTURE_DIR/$case.json"
	if ! ctr_ run --rm --runtime io.containerd.runc.v2 --runc-binary "$WRAPPER" \
		--runc-root "$RUNC_ROOT" "$@" "$BUSYBOX_IMAGE" "$case" true </dev/null >&2; then
		log "ctr run for $case failed"
	fi
	[[ -f $CAPTURE_DIR/$case.json ]] || {
		log "no spec captured for $case"
		return 1
	}
	rm -rf "${OUT:?}/$case" && mkdir -p "$OUT/$case"
	store_spec "$CAPTURE_DIR/$case.json" "$OUT/$case/config.json"
	write_meta "$case" "ctr run --runtime io.containerd.runc.v2${*:+ $*}" \
		"$CONTAINERD_VERSION_LINE; $RUNC_VERSION_LINE" \
		"ctr run of $BUSYBOX_IMAGE (command: true) in containerd namespace \"default\", through a runc wrapper (--runc-binary) that copied config.json on create; the container ran and was removed. Rootfs is the bundle-relative \"rootfs\"." \
		'{"kubeletRoot": "", "netnsDir": ""}'
	log "captured $case"
}
failed=()
if want ctr-run; then capture_ctr_run ctr-run || failed+=(ctr-run); fi
if want ctr-run-privileged; then capture_ctr_run ctr-run-privileged --privileged || failed+=(ctr-run-privileged); fi

# --- CRI pods ---------------------------------------------------------------------------------------
# The JSON below is what a kubelet would send for a BestEffort pod with one
# container (crictl reads the CRI messages' snake_case JSON names; enums are
# numbers): NamespaceMode POD=0 CONTAINER=1 NODE=2; seccomp ProfileType
# RuntimeDefault=0 Unconfined=1 Localhost=2. Like kubelet's default, pods get
# seccomp Unconfined unless a case asks otherwise. kubelet-managed host paths
# (etc-hosts, the service-account volume, termination log, emptyDir) live
# under a fake kubelet root, $KUBELET_ROOT.

# containerd relies on the kubelet for an app container's masked and read-only
# /proc and /sys paths: it clears its own defaults and applies only what the
# CRI request carries (and clears those for privileged containers). The kubelet
# sends its default lists (procMount Default); these are the same paths that
# containerd itself puts in the sandbox spec.
DEFAULT_MASKED_PATHS='["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"]'
DEFAULT_READONLY_PATHS='["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]'

# pod_json NAME UID
pod_json() {
	local name=$1 uid=$2
	jq -n --arg name "$name" --arg uid "$uid" --arg ns "$K8S_NAMESPACE" \
		--arg logdir "$POD_LOG_ROOT/${K8S_NAMESPACE}_${name}_${uid}" '{
		metadata: {name: $name, namespace: $ns, uid: $uid, attempt: 0},
		hostname: $name,
		log_directory: $logdir,
		dns_config: {
			servers: ["198.51.100.10"],
			searches: [($ns + ".svc.cluster.local"), "svc.cluster.local", "cluster.local"],
			options: ["ndots:5"]
		},
		labels: {
			"io.kubernetes.pod.name": $name,
			"io.kubernetes.pod.namespace": $ns,
			"io.kubernetes.pod.uid": $uid,
			app: $name
		},
		annotations: {
			"kubernetes.io/config.source": "api",
			"kubernetes.io/config.seen": "2026-01-01T00:00:00.000000000Z"
		},
		linux: {
			cgroup_parent: ("/kubepods/besteffort/pod" + $uid),
			security_context: {
				namespace_options: {network: 0, pid: 1, ipc: 0},
				seccomp: {profile_type: 1}
			}
		}
	}'
}

# container_json NAME UID [CONTAINER]  (kubelet-style mounts are created on
# the host here; CONTAINER is the container's name, default app)
container_json() {
	local name=$1 uid=$2 cname=${3:-app} pod_dir="$KUBELET_ROOT/pods/$2"
	local sa_dir="$pod_dir/volumes/kubernetes.io~projected/kube-api-access-w4rd0"
	local term_log="$pod_dir/containers/$cname/0a1b2c3d"
	mkdir -p "$sa_dir" "$(dirname "$term_log")" "$pod_dir/volumes/kubernetes.io~empty-dir/cache"
	printf '198.51.100.0\tlocalhost\n' >"$pod_dir/etc-hosts"
	printf 'ward-corpus-fake-token' >"$sa_dir/token"
	printf '%s' "$K8S_NAMESPACE" >"$sa_dir/namespace"
	: >"$term_log"
	jq -n --arg name "$name" --arg uid "$uid" --arg ns "$K8S_NAMESPACE" --arg cname "$cname" \
		--arg image "$BUSYBOX_IMAGE" --arg hosts "$pod_dir/etc-hosts" \
		--arg sa "$sa_dir" --arg term "$term_log" \
		--argjson masked "$DEFAULT_MASKED_PATHS" --argjson readonly "$DEFAULT_READONLY_PATHS" '{
		metadata: {name: $cname, attempt: 0},
		image: {image: $image, user_specified_image: $image},
		command: ["sleep", "3600"],
		envs: [
			{key: "KUBERNETES_SERVICE_HOST", value: "198.51.100.1"},
			{key: "KUBERNETES_SERVICE_PORT", value: "443"}
		],
		mounts: [
			{container_path: "/etc/hosts", host_path: $hosts},
			{container_path: "/var/run/secrets/kubernetes.io/serviceaccount", host_path: $sa, readonly: true},
			{container_path: "/dev/termination-log", host_path: $term}
		],
		labels: {
			"io.kubernetes.container.name": $cname,
			"io.kubernetes.pod.name": $name,
			"io.kubernetes.pod.namespace": $ns,
			"io.kubernetes.pod.uid": $uid
		},
		annotations: {
			"io.kubernetes.container.hash": "5a3e7b21",
			"io.kubernetes.container.restartCount": "0",
			"io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
			"io.kubernetes.container.terminationMessagePolicy": "File",
			"io.kubernetes.pod.terminationGracePeriod": "30"
		},
		log_path: ($cname + "/0.log"),
		linux: {
			resources: {cpu_shares: 2, oom_score_adj: 1000},
			security_context: {
				namespace_options: {network: 0, pid: 1, ipc: 0},
				seccomp: {profile_type: 1},
				masked_paths: $masked,
				readonly_paths: $readonly
			}
		}
	}'
}

# run_cri_case CASE POD_JQ CTR_JQ NOTES [NAME=JQ...]
#   POD_JQ / CTR_JQ: jq filters applied to the base pod / container JSON.
#   NAME=JQ: another container of the pod, named NAME, with its own filter,
#   created and started before the app container in the order given (as
#   the kubelet starts init containers and sidecars first); its spec is
#   kept as container-NAME.json. The CRI tells a runtime nothing about a
#   container being an init container: only the order differs.
run_cri_case() {
	local case=$1 pod_filter=$2 ctr_filter=$3 notes=$4
	shift 4
	local uid pod_id ctr_id dir="$TMP/cases/$case"
	uid=$(cat /proc/sys/kernel/random/uuid)
	POD_UIDS+=("$uid")
	mkdir -p "$dir"
	# Filters may use $uid (the pod UID) and $kubelet (the fake kubelet root).
	local jqargs=(--arg uid "$uid" --arg kubelet "$KUBELET_ROOT")
	pod_json "$case" "$uid" | jq "${jqargs[@]}" "$pod_filter" >"$dir/pod.json"
	container_json "$case" "$uid" | jq "${jqargs[@]}" "$ctr_filter" >"$dir/container.json"
	rm -rf "${OUT:?}/$case" && mkdir -p "$OUT/$case"
	cp "$dir/pod.json" "$OUT/$case/cri-pod-config.json"
	cp "$dir/container.json" "$OUT/$case/cri-container-config.json"

	log "$case: runp"
	if ! pod_id=$(crictl_ runp --runtime capture "$dir/pod.json" 2>"$dir/runp.err"); then
		notes+=" RunPodSandbox FAILED: $(tr '\n' ' ' <"$dir/runp.err")"
		log "$case: runp failed: $(cat "$dir/runp.err")"
		# The runtime may still have been handed a sandbox spec before failing.
		local f
		f=$(grep -l "\"io.kubernetes.cri.sandbox-name\":\"$case\"" "$CAPTURE_DIR"/*.json 2>/dev/null | head -n1 || true)
		[[ -n $f ]] && store_spec "$f" "$OUT/$case/sandbox.json"
		write_meta "$case" "containerd CRI via crictl" "$CONTAINERD_VERSION_LINE; $RUNC_VERSION_LINE; crictl $CRICTL_VERSION" "$notes" \
			"$(jq -n --arg uid "$uid" '{podUID: $uid, runtimeHandler: "capture", failed: true}')"
		return 1
	fi
	POD_IDS+=("$pod_id")
	store_spec "$CAPTURE_DIR/$pod_id.json" "$OUT/$case/sandbox.json"

	local ok=1 extra cname cfilter extra_id
	for extra in "$@"; do
		cname=${extra%%=*} cfilter=${extra#*=}
		container_json "$case" "$uid" "$cname" | jq "${jqargs[@]}" "$cfilter" >"$dir/container-$cname.json"
		cp "$dir/container-$cname.json" "$OUT/$case/cri-container-$cname-config.json"
		log "$case: create + start $cname"
		if ! extra_id=$(crictl_ create "$pod_id" "$dir/container-$cname.json" "$dir/pod.json" 2>"$dir/create-$cname.err"); then
			notes+=" CreateContainer $cname FAILED: $(tr '\n' ' ' <"$dir/create-$cname.err")"
			ok=0
			continue
		fi
		crictl_ start "$extra_id" >/dev/null 2>"$dir/start-$cname.err" || {
			notes+=" StartContainer $cname FAILED: $(tr '\n' ' ' <"$dir/start-$cname.err")"
			ok=0
		}
		[[ -f $CAPTURE_DIR/$extra_id.json ]] && store_spec "$CAPTURE_DIR/$extra_id.json" "$OUT/$case/container-$cname.json"
	done

	log "$case: create + start"
	if ! ctr_id=$(crictl_ create "$pod_id" "$dir/container.json" "$dir/pod.json" 2>"$dir/create.err"); then
		notes+=" CreateContainer FAILED: $(tr '\n' ' ' <"$dir/create.err")"
		log "$case: create failed: $(cat "$dir/create.err")"
		ok=0
		ctr_id=
	elif ! crictl_ start "$ctr_id" >/dev/null 2>"$dir/start.err"; then
		notes+=" StartContainer FAILED: $(tr '\n' ' ' <"$dir/start.err")"
		log "$case: start failed: $(cat "$dir/start.err")"
		ok=0
	fi
	if [[ -n $ctr_id && -f $CAPTURE_DIR/$ctr_id.json ]]; then
		store_spec "$CAPTURE_DIR/$ctr_id.json" "$OUT/$case/container.json"
	fi
	local state=
	[[ -n $ctr_id ]] && state=$(crictl_ inspect -o go-template --template '{{.status.state}}' "$ctr_id" 2>/dev/null || true)
	[[ -n $state ]] && notes+=" App container state after start: $state."

	crictl_ stopp "$pod_id" >/dev/null 2>&1 || log "$case: stopp failed"
	crictl_ rmp "$pod_id" >/dev/null 2>&1 || log "$case: rmp failed"

	write_meta "$case" "containerd CRI via crictl (runp/create/start)" \
		"$CONTAINERD_VERSION_LINE; $RUNC_VERSION_LINE; crictl $CRICTL_VERSION" "$notes" \
		"$(jq -n --arg uid "$uid" --arg pod "$pod_id" --arg ctr "$ctr_id" --arg pause "$PAUSE_IMAGE" \
			--arg image "$BUSYBOX_IMAGE" --arg logs "$POD_LOG_ROOT" --arg cni "$CNI_NET_NAME" --argjson ok "$ok" '{
				podUID: $uid, sandboxId: $pod, containerId: $ctr, runtimeHandler: "capture", failed: ($ok == 0),
				sandboxImage: $pause, image: $image, podLogRoot: $logs, cniNetwork: $cni,
				criConfigs: ["cri-pod-config.json", "cri-container-config.json"]
			}')"
	log "$case: captured (ok=$ok)"
	((ok))
}

BASE_NOTES="Kubelet-like BestEffort pod (pod namespace $K8S_NAMESPACE, cgroup parent /kubepods/besteffort/pod<uid>, seccomp Unconfined as kubelet's default) sent by crictl to a private containerd; the CRI handler 'capture' (io.containerd.runc.v2, pod_annotations and container_annotations [\"ward.dev/*\"], restrict_oom_score_adj) ran runc through a wrapper that copied config.json on create. sandbox.json is the pause container (image $PAUSE_IMAGE, busybox sleep), container.json the app container (image $BUSYBOX_IMAGE, sleep 3600). kubelet-managed mounts (etc-hosts, kube-api-access, termination log) are under kubeletRoot; /etc/hostname, /etc/resolv.conf and /dev/shm come from containerd under containerdRoot/containerdState; the CRI request JSON is kept beside the specs as cri-*-config.json."

# case NAME POD_JQ CTR_JQ NOTES [NAME=JQ...]
cri_case() {
	want "$1" || return 0
	local name=$1 pod=$2 ctr=$3 notes=$4
	shift 4
	run_cri_case "$name" "$pod" "$ctr" "$BASE_NOTES $notes" "$@" || failed+=("$name")
}

cri_case cri-ordinary '.' \
	'.mounts += [{container_path: "/cache", host_path: ($kubelet + "/pods/" + $uid + "/volumes/kubernetes.io~empty-dir/cache")}]' \
	"Ordinary pod with an emptyDir volume mounted at /cache (host path under kubeletRoot)."

cri_case cri-privileged \
	'.linux.security_context.privileged = true' \
	'.linux.security_context.privileged = true' \
	"Container securityContext.privileged: true; kubelet also marks the sandbox privileged when any container is."

# kubelet copies the pod's host namespaces into every container's namespace_options.
cri_case cri-hostpid \
	'.linux.security_context.namespace_options.pid = 2' \
	'.linux.security_context.namespace_options.pid = 2' \
	"hostPID: namespace_options.pid = NODE (2) on the pod and the container."

# kubelet sends no hostname for a hostNetwork pod (containerd then writes the
# node's into /etc/hostname): with the host's UTS namespace, runc refuses to
# set any hostname at all ("unable to set hostname without a private UTS
# namespace"), even the host's own.
cri_case cri-hostnetwork \
	'.linux.security_context.namespace_options.network = 2 | del(.hostname) | del(.dns_config)' \
	'.linux.security_context.namespace_options.network = 2' \
	"hostNetwork: namespace_options.network = NODE (2) on the pod and the container, no pod hostname, as kubelet sends none for hostNetwork pods (no CNI call; no pod DNS config, as kubelet's ClusterFirst falls back to the host's for hostNetwork pods)."

cri_case cri-hostipc \
	'.linux.security_context.namespace_options.ipc = 2' \
	'.linux.security_context.namespace_options.ipc = 2' \
	"hostIPC: namespace_options.ipc = NODE (2) on the pod and the container."

if want cri-docker-sock; then
	# A hostPath volume of the Docker socket. containerd creates a missing host
	# path as a *directory*, so a socket file must exist first.
	if [[ -e /var/run/docker.sock ]]; then
		DOCKER_SOCK_NOTE="/var/run/docker.sock already existed on the host and was used as is."
	else
		CREATED_DOCKER_SOCK=$(readlink -f /var/run)/docker.sock
		if [[ -x /usr/bin/python3 ]]; then
			# A real (unlistened) unix socket, like dockerd's.
			/usr/bin/python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$CREATED_DOCKER_SOCK"
			DOCKER_SOCK_NOTE="No Docker here: the script created a dummy unix socket at $CREATED_DOCKER_SOCK (/var/run/docker.sock) for the capture and removed it afterwards."
		else
			: >"$CREATED_DOCKER_SOCK"
			DOCKER_SOCK_NOTE="No Docker here: the script created an empty regular file at $CREATED_DOCKER_SOCK (/var/run/docker.sock) for the capture and removed it afterwards."
		fi
	fi
fi
cri_case cri-docker-sock '.' \
	'.mounts += [{container_path: "/var/run/docker.sock", host_path: "/var/run/docker.sock"}]' \
	"hostPath volume /var/run/docker.sock mounted read-write at /var/run/docker.sock. $DOCKER_SOCK_NOTE containerd resolves a host path only when its last component is a symlink, so the source stays /var/run/docker.sock although /var/run is a symlink to /run on Debian."

cri_case cri-hostpath-root '.' \
	'.mounts += [{container_path: "/host", host_path: "/"}]' \
	"hostPath volume / mounted read-write at /host (propagation private, kubelet's default None)."

cri_case cri-cap-sys-admin '.' \
	'.linux.security_context.capabilities = {add_capabilities: ["SYS_ADMIN"]}' \
	"Container capabilities.add [SYS_ADMIN]."

cri_case cri-unsafe-sysctl \
	'.linux.sysctls = {"kernel.shm_rmid_forced": "1", "net.core.somaxconn": "1024"}' \
	'.' \
	"Pod sysctls kernel.shm_rmid_forced=1 (in the Pod Security Standards safe set) and net.core.somaxconn=1024 (not in it; kubelet would need --allowed-unsafe-sysctls). Both are namespaced; containerd does no safe/unsafe filtering (that is the kubelet's job)."

# The well-behaved pod: what the restricted Pod Security Standard asks for.
cri_case cri-nonroot-seccomp \
	'.linux.security_context += {run_as_user: {value: 1000}, run_as_group: {value: 1000}, seccomp: {profile_type: 0}}' \
	'.linux.security_context += {run_as_user: {value: 1000}, run_as_group: {value: 1000}, readonly_rootfs: true, no_new_privs: true, capabilities: {drop_capabilities: ["ALL"]}, seccomp: {profile_type: 0}}' \
	"runAsUser/runAsGroup 1000, seccompProfile RuntimeDefault (CRI profile_type 0; 1 would be Unconfined), readOnlyRootFilesystem, allowPrivilegeEscalation false (no_new_privs), capabilities drop [ALL]."

cri_case cri-untrusted \
	'.annotations["ward.dev/untrusted"] = "true"' \
	'.' \
	"Ordinary pod carrying the pod annotation ward.dev/untrusted: \"true\" (passed into the specs because the handler lists ward.dev/* in pod_annotations)."

# Pods with mixed decisions: ward decides each container in its pod's
# context, so one pod can hold containers on different backends, or a
# container ward rejects beside ones it runs.
cri_case cri-mixed-init-gvisor '.' '.' \
	"Two containers: mesh-init first (the service-mesh init pattern: capabilities.add [NET_ADMIN, NET_RAW], runAsUser 0; kept as container-mesh-init.json), then the ordinary app container (container.json)." \
	'mesh-init=.command = ["sleep", "3600"] | .linux.security_context.capabilities = {add_capabilities: ["NET_ADMIN", "NET_RAW"]} | .linux.security_context.run_as_user = {value: 0}'

cri_case cri-mixed-sidecar-reject '.' '.' \
	"Two containers: a log-agent sidecar first, mounting the hostPath /var/log read-write at /host/var/log (kept as container-log-agent.json), then the ordinary app container (container.json)." \
	'log-agent=.mounts += [{container_path: "/host/var/log", host_path: "/var/log"}]'

# --- summary ------------------------------------------------------------------------------
if ((${#failed[@]})); then
	log "done; cases with failures (see their meta.json notes): ${failed[*]}"
	exit 1
else
	log "done; all ${#cases[@]} cases captured into $OUT"
fi
