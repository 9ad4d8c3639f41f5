#!/usr/bin/env bash
# build-busybox.sh OUTDIR — build tiny local OCI images from Debian's static
# busybox, with nothing but shell tools (no docker, no registry, no network).
#
# Writes two OCI image-layout archives, both importable with
#   ctr [-n k8s.io] images import OUTDIR/<name>.tar
# and both using the same single (uncompressed) layer:
#
#   OUTDIR/busybox.tar  ->  ward.test/busybox:1   Cmd ["sh"]
#   OUTDIR/pause.tar    ->  ward.test/pause:1     Entrypoint ["/bin/sleep", "2147483647"],
#                                                 User 65535:65535 (like the real pause image),
#                                                 usable as containerd's pinned sandbox image.
#
# The names live under ward.test, a reserved domain no registry serves, so
# nothing ever tries to pull them. The archives are byte-for-byte reproducible
# for a given busybox binary (fixed mtimes, sorted entries, numeric owners).
#
# WARD_IMAGE_EXTRA=DIR copies DIR's tree into the images' root, modes (setuid
# bits too) kept, e.g. a test's static programs under usr/local/bin (the
# images share their one layer).
#
# Needs: busybox-static (/bin/busybox), tar, sha256sum, jq.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
OUTDIR=$1
BUSYBOX=${BUSYBOX:-/bin/busybox}
# Fixed timestamp for layer entries and image configs, for reproducibility.
EPOCH=${SOURCE_DATE_EPOCH:-0}
CREATED=$(date -u -d "@${EPOCH}" +%Y-%m-%dT%H:%M:%SZ)

for tool in tar sha256sum jq; do
	command -v "$tool" >/dev/null || {
		echo "$0: missing $tool" >&2
		exit 1
	}
done
# A dynamically linked busybox would not run in an empty rootfs; ldd fails
# ("not a dynamic executable") only for a static binary.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	echo "$0: $BUSYBOX is dynamically linked (install busybox-static)" >&2
	exit 1
fi
if ! "$BUSYBOX" --list >/dev/null 2>&1; then
	echo "$0: $BUSYBOX does not run" >&2
	exit 1
fi

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- root filesystem -------------------------------------------------------
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,dev,proc,sys,tmp,root,var/tmp,home}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 0700 "$rootfs/root"
cp "$BUSYBOX" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"
# Every applet as a hard link in /bin (one inode, tiny layer). PATH includes
# /bin, and `sh`, `sleep`, `cat`, `id`... all resolve there.
while read -r applet; do
	[[ -n $applet && $applet != busybox && ! -e "$rootfs/bin/$applet" ]] || continue
	ln "$rootfs/bin/busybox" "$rootfs/bin/$applet"
done < <("$BUSYBOX" --list)
# Minimal user database, so numeric and named users both resolve.
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
find "$rootfs" -exec touch -h -d "@${EPOCH}" {} +

if [[ -n ${WARD_IMAGE_EXTRA:-} ]]; then
	cp -a "$WARD_IMAGE_EXTRA/." "$rootfs/"
	find "$rootfs" -exec touch -h -d "@${EPOCH}" {} +
fi

# --- OCI layout helpers ------------------------------------------------------
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"

# add_blob FILE -> prints "sha256:<hex> <size>" and stores FILE as a blob.
add_blob() {
	local file=$1 hex size
	hex=$(sha256sum "$file" | cut -d' ' -f1)
	size=$(stat -c %s "$file")
	cp "$file" "$layout/blobs/sha256/$hex"
	printf 'sha256:%s %s\n' "$hex" "$size"
}

# The layer: an uncompressed tar, so its digest is also its diff_id.
tar --create --file="$work/layer.tar" --directory="$rootfs" \
	--sort=name --numeric-owner --owner=0 --group=0 \
	--mtime="@${EPOCH}" --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	.
read -r layer_digest layer_size < <(add_blob "$work/layer.tar")
bb_version=$("$BUSYBOX" 2>/dev/null | head -n1 | sed 's/ multi-call binary.*//' || true)

# build_image NAME REF CONFIG_JSON_FRAGMENT -> writes OUTDIR/NAME.tar
build_image() {
	local name=$1 ref=$2 cfg=$3 dir="$work/$1"
	rm -rf "$dir"
	mkdir -p "$dir/blobs/sha256"
	cp "$layout/blobs/sha256/${layer_digest#sha256:}" "$dir/blobs/sha256/"

	jq -n --arg created "$CREATED" --arg diff "$layer_digest" \
		--arg bb "$bb_version" --argjson cfg "$cfg" '{
			created: $created,
			architecture: "amd64",
			os: "linux",
			config: ({Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]} + $cfg),
			rootfs: {type: "layers", diff_ids: [$diff]},
			history: [{created: $created, created_by: ("ward build-busybox.sh: " + $bb)}]
		}' >"$work/$name-config.json"
	local cfg_digest cfg_size
	read -r cfg_digest cfg_size < <(add_blob "$work/$name-config.json")
	cp "$layout/blobs/sha256/${cfg_digest#sha256:}" "$dir/blobs/sha256/"

	jq -n --arg cd "$cfg_digest" --argjson cs "$cfg_size" \
		--arg ld "$layer_digest" --argjson ls "$layer_size" '{
			schemaVersion: 2,
			mediaType: "application/vnd.oci.image.manifest.v1+json",
			config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
			layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
		}' >"$work/$name-manifest.json"
	local man_digest man_size
	read -r man_digest man_size < <(add_blob "$work/$name-manifest.json")
	cp "$layout/blobs/sha256/${man_digest#sha256:}" "$dir/blobs/sha256/"

	# io.containerd.image.name carries the full name (ctr import uses it when
	# no --base-name is given); org.opencontainers.image.ref.name is the tag,
	# as the OCI layout spec suggests.
	jq -n --arg md "$man_digest" --argjson ms "$man_size" --arg ref "$ref" '{
			schemaVersion: 2,
			mediaType: "application/vnd.oci.image.index.v1+json",
			manifests: [{
				mediaType: "application/vnd.oci.image.manifest.v1+json",
				digest: $md, size: $ms,
				platform: {architecture: "amd64", os: "linux"},
				annotations: {
					"io.containerd.image.name": $ref,
					"org.opencontainers.image.ref.name": ($ref | sub(".*:"; ""))
				}
			}]
		}' >"$dir/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	find "$dir" -exec touch -h -d "@${EPOCH}" {} +
	tar --create --file="$OUTDIR/$name.tar" --directory="$dir" \
		--sort=name --numeric-owner --owner=0 --group=0 \
		--mtime="@${EPOCH}" --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		oci-layout index.json blobs
	echo "$OUTDIR/$name.tar: $ref (manifest $man_digest)"
}

build_image busybox ward.test/busybox:1 '{"Cmd": ["sh"]}'
# Busybox `sleep` stands in for the pause binary: the sandbox container only
# needs a process that holds the namespaces and never exits.
build_image pause ward.test/pause:1 '{"Entrypoint": ["/bin/sleep", "2147483647"], "User": "65535:65535", "WorkingDir": "/"}'
