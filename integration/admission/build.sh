#!/bin/sh
# Builds Kubernetes v1.37.2 (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl) and etcd v3.7.3 from the Go module proxy
# into one cache directory (once; about 12 minutes on 2 cores, ~460 MB) and
# prints that directory. integration/admission needs the apiserver and etcd,
# integration/k8s all of them. The kubernetes module refuses `go install`
# (replace directives), so: its source with the staging replaces pointed at
# the published modules; etcd's server through a throwaway module.
set -eu
cache=${WARD_K8S_CACHE:-/var/tmp/ward-k8s-v1.37.2}
kube="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"
complete() {
	for b in $kube etcd; do [ -x "$cache/$b" ] || return 1; done
}
if complete; then
	echo "$cache"
	exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d /var/tmp/ward-k8s-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
	src=$(go mod download -json k8s.io/kubernetes@v1.37.2 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$src" "$work/src"
	chmod -R u+w "$work/src"
	cd "$work/src"
	rm -f go.work go.work.sum
	sed -i -E 's#^([[:space:]]*)k8s.io/([a-z0-9-]+) => ./staging/src/k8s.io/[a-z0-9-]+#\1k8s.io/\2 => k8s.io/\2 v0.37.2#' go.mod
	if grep -q '=> ./staging' go.mod; then echo "build.sh: a staging replace is left" >&2; exit 1; fi
	ver="-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/client-go/pkg/version.gitVersion=v1.37.2"
	for b in $kube; do
		# Each binary lands under a temporary name and is renamed when
		# complete, so an interrupted build is never taken for a cached one.
		[ -x "$cache/$b" ] && continue
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w $ver" -o "$cache/$b.tmp" "./cmd/$b"
		mv "$cache/$b.tmp" "$cache/$b"
	done
	if [ ! -x "$cache/etcd" ]; then
		mkdir "$work/etcd" && cd "$work/etcd"
		go mod init etcdbuild
		GOFLAGS=-mod=mod go get go.etcd.io/etcd/server/v3@v3.7.3
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$cache/etcd.tmp" go.etcd.io/etcd/server/v3
		mv "$cache/etcd.tmp" "$cache/etcd"
	fi
} >&2
echo "$cache"
