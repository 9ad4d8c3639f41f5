#!/usr/bin/env bash
# build-image.sh OUT.tar KUBECTL — the installer image that ward-deploy.yaml
# runs, built without a registry or a container engine: ward's binaries
# (./bin, from `make build`), ward-deploy.sh and KUBECTL on Debian's static
# busybox (sh, nsenter, sha256sum, sed...), as an OCI image-layout archive
# to import into the node's containerd:
#
#   ctr -n k8s.io images import OUT.tar
#
# Its name is ward-deploy.yaml's placeholder (WARD_INSTALLER_IMAGE to
# change it), so the DaemonSet uses it as it is with imagePullPolicy
# IfNotPresent. The Dockerfile beside this script builds the same contents
# on Debian for a registry. Needs busybox-static, tar, jq (see
# integration/image/build-busybox.sh, which makes the layer).
set -euo pipefail
if [[ $# -ne 2 ]]; then
	echo "usage: $0 OUT.tar KUBECTL" >&2
	exit 2
fi
out=$1
kubectl=$2
ref=${WARD_INSTALLER_IMAGE:-docker.io/library/ward-installer:v0.1.0}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/extra/opt/ward/bin" "$work/extra/usr/local/bin"
for b in ward ward-runtime containerd-shim-ward-v2 ward-init; do
	cp "$repo/bin/$b" "$work/extra/opt/ward/bin/$b"
done
cp "$repo/contrib/kubernetes/ward-deploy.sh" "$work/extra/opt/ward/bin/ward-deploy.sh"
cp "$kubectl" "$work/extra/usr/local/bin/kubectl"
chmod 0755 "$work/extra/opt/ward/bin/"* "$work/extra/usr/local/bin/kubectl"

WARD_IMAGE_EXTRA="$work/extra" "$repo/integration/image/build-busybox.sh" "$work/images" >/dev/null
# The busybox archive with the extra files is the image; only its name
# changes (index.json is not part of any digest).
mkdir "$work/layout"
tar -xf "$work/images/busybox.tar" -C "$work/layout"
jq --arg ref "$ref" '.manifests[0].annotations = {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": ($ref | sub(".*:"; ""))}' \
	"$work/layout/index.json" >"$work/index.json"
mv "$work/index.json" "$work/layout/index.json"
tar --create --file="$out" --directory="$work/layout" --sort=name --numeric-owner --owner=0 --group=0 --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime oci-layout index.json blobs
echo "$out: $ref"
