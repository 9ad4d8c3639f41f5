#!/usr/bin/env bash
# install-deps.sh — install the pinned container tooling that ward's integration
# tests and corpus capture need, on a fresh Debian 12 machine, as root.
#
# Usage:
#   integration/install-deps.sh                 # everything (apt + all components)
#   integration/install-deps.sh runc crictl     # only the named components
#
# Components: apt containerd runc crictl cni runsc   (apt is implied by runc and is
# always checked; it is cheap when the packages are already installed).
#
# Binaries go to ${WARD_DEPS_BIN:-/opt/ward-deps/bin}; CNI plugins to
# ${WARD_DEPS_BIN}/cni. The script is idempotent: each `go install` writes a
# stamp file $GOBIN/.stamp-<name>-<version>, and a binary whose stamp exists
# (and whose file is still present) is not rebuilt.
#
# Builds are slow on 2 cores (containerd ≈ 2 min cold, runc ≈ 1 min). Each
# build logs to ${WARD_DEPS_LOG:-/tmp/ward-install-deps.log}, so a caller that
# must stay under a shell time limit can run this in the background and poll.
set -euo pipefail

WARD_DEPS_BIN=${WARD_DEPS_BIN:-/opt/ward-deps/bin}
WARD_DEPS_LOG=${WARD_DEPS_LOG:-/tmp/ward-install-deps.log}
CNI_BIN="${WARD_DEPS_BIN}/cni"

# Pinned versions. Keep these in one place: capture.sh and the corpus README
# refer to the same numbers.
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.4.4
CRICTL_VERSION=v1.37.0
CNI_PLUGINS_VERSION=v1.10.0

# podman and docker.io: the real clients ward-runtime is tested under
# (integration/runtime); their daemons are started by the tests only.
APT_PACKAGES=(libseccomp-dev busybox-static iproute2 jq podman docker.io mmdebstrap)

log() { printf '[install-deps] %s\n' "$*" >&2; }

# --- apt -------------------------------------------------------------------
apt_updated=0
install_apt() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		# dpkg-query prints "install ok installed" only for a fully installed package.
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		log "apt: all of ${APT_PACKAGES[*]} already installed"
		return
	fi
	if ((apt_updated == 0)); then
		log "apt: apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	log "apt: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- go install with a stamp -------------------------------------------------
# go_install GOBIN NAME VERSION [go install args...] PKG@VERSION
# NAME is the resulting binary's file name; the stamp records NAME+VERSION.
go_install() {
	local gobin=$1 name=$2 version=$3
	shift 3
	local stamp="${gobin}/.stamp-${name}-${version}"
	if [[ -f "$stamp" && -x "${gobin}/${name}" ]]; then
		log "${name} ${version}: already installed in ${gobin}"
		return
	fi
	mkdir -p "$gobin"
	log "${name} ${version}: go install $* (log: ${WARD_DEPS_LOG})"
	local start=$SECONDS
	if ! GOBIN="$gobin" go install "$@" >>"$WARD_DEPS_LOG" 2>&1; then
		log "${name} ${version}: go install FAILED; see ${WARD_DEPS_LOG}"
		tail -n 30 "$WARD_DEPS_LOG" >&2 || true
		return 1
	fi
	# Drop stamps of other versions so the directory says which version is there.
	rm -f "${gobin}/.stamp-${name}-"*
	touch "$stamp"
	log "${name} ${version}: done in $((SECONDS - start))s"
}

require_go() {
	command -v go >/dev/null 2>&1 || {
		log "go is not on PATH; install Go first"
		exit 1
	}
}

install_containerd() {
	require_go
	local m=github.com/containerd/containerd/v2/cmd
	# CGO off: containerd, ctr and the shim do not need cgo, and static
	# binaries avoid surprises when the shim re-execs itself.
	CGO_ENABLED=0 go_install "$WARD_DEPS_BIN" containerd "$CONTAINERD_VERSION" "${m}/containerd@${CONTAINERD_VERSION}"
	CGO_ENABLED=0 go_install "$WARD_DEPS_BIN" ctr "$CONTAINERD_VERSION" "${m}/ctr@${CONTAINERD_VERSION}"
	CGO_ENABLED=0 go_install "$WARD_DEPS_BIN" containerd-shim-runc-v2 "$CONTAINERD_VERSION" "${m}/containerd-shim-runc-v2@${CONTAINERD_VERSION}"
}

install_runc() {
	require_go
	install_apt # runc's seccomp support links libseccomp (cgo)
	# Without -tags seccomp, runc rejects every spec that has linux.seccomp.
	CGO_ENABLED=1 go_install "$WARD_DEPS_BIN" runc "$RUNC_VERSION" -tags seccomp "github.com/opencontainers/runc@${RUNC_VERSION}"
}

install_crictl() {
	require_go
	go_install "$WARD_DEPS_BIN" crictl "$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
}

install_cni() {
	require_go
	local m=github.com/containernetworking/plugins/plugins
	CGO_ENABLED=0 go_install "$CNI_BIN" bridge "$CNI_PLUGINS_VERSION" "${m}/main/bridge@${CNI_PLUGINS_VERSION}"
	CGO_ENABLED=0 go_install "$CNI_BIN" loopback "$CNI_PLUGINS_VERSION" "${m}/main/loopback@${CNI_PLUGINS_VERSION}"
	CGO_ENABLED=0 go_install "$CNI_BIN" host-local "$CNI_PLUGINS_VERSION" "${m}/ipam/host-local@${CNI_PLUGINS_VERSION}"
}

# --- runsc (gVisor) ------------------------------------------------------------
# Static on purpose (CGO_ENABLED=0): a cgo build cannot re-exec itself inside
# its chroot ("fork/exec /proc/self/exe: no such file or directory").
RUNSC_VERSION=v0.0.0-20260905035102-160fafc42237

install_runsc() {
	require_go
	CGO_ENABLED=0 go_install "$WARD_DEPS_BIN" runsc "$RUNSC_VERSION" "gvisor.dev/gvisor/runsc@${RUNSC_VERSION}"
}

# --- critest (cri-tools' CRI validation suite) and crane ----------------------------
# Not in ALL_COMPONENTS: only integration/critest (WARD_CRITEST=1) uses them.
# `go install` refuses critest (a test binary), so build it from a writable
# copy of the module, as cri-tools' own Makefile does.
CRANE_VERSION=v0.22.1

install_critest() {
	require_go
	go_install "$WARD_DEPS_BIN" crane "$CRANE_VERSION" "github.com/google/go-containerregistry/cmd/crane@${CRANE_VERSION}"
	local stamp="${WARD_DEPS_BIN}/.stamp-critest-${CRICTL_VERSION}"
	if [[ -f "$stamp" && -x "${WARD_DEPS_BIN}/critest" ]]; then
		log "critest ${CRICTL_VERSION}: already installed in ${WARD_DEPS_BIN}"
		return
	fi
	log "critest ${CRICTL_VERSION}: building from the cri-tools module (log: ${WARD_DEPS_LOG})"
	local src work
	src=$(go mod download -json "sigs.k8s.io/cri-tools@${CRICTL_VERSION}" | jq -r .Dir)
	work=$(mktemp -d)
	cp -r "$src/." "$work"
	chmod -R u+w "$work"
	if ! (cd "$work" && GOFLAGS=-mod=mod go test -c -o "${WARD_DEPS_BIN}/critest" ./cmd/critest) >>"$WARD_DEPS_LOG" 2>&1; then
		rm -rf "$work"
		log "critest: build FAILED; see ${WARD_DEPS_LOG}"
		return 1
	fi
	rm -rf "$work"
	rm -f "${WARD_DEPS_BIN}/.stamp-critest-"*
	touch "$stamp"
}

ALL_COMPONENTS=(apt containerd runc crictl cni runsc)

main() {
	if [[ $(id -u) -ne 0 ]]; then
		log "must run as root (apt-get, /opt)"
		exit 1
	fi
	local components=("$@")
	((${#components[@]})) || components=("${ALL_COMPONENTS[@]}")
	: >>"$WARD_DEPS_LOG"
	local c start=$SECONDS
	for c in "${components[@]}"; do
		case "$c" in
		apt) install_apt ;;
		containerd) install_containerd ;;
		runc) install_runc ;;
		crictl) install_crictl ;;
		cni) install_cni ;;
		runsc) install_runsc ;;
		critest) install_critest ;;
		-h | --help)
			sed -n '2,18p' "$0"
			exit 0
			;;
		*)
			log "unknown component: $c (known: ${ALL_COMPONENTS[*]} critest)"
			exit 2
			;;
		esac
	done
	log "all requested components present in ${WARD_DEPS_BIN} ($((SECONDS - start))s)"
}

main "$@"
