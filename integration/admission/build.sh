#!/bin/sh
# Builds kube-apiserver v1.37.2 and etcd v3.7.3 from the Go module proxy
# into a cache directory (once; about 12 minutes on 2 cores) and prints that
# directory. Both refuse `go install` (replace directives), so: the
# kubernetes module's source with its staging replaces pointed at the
# published modules, and a throwaway module requiring etcd's server.
set -eu
cache=${WARD_K8S_CACHE:-/var/tmp/ward-k8s-v1.37.2}
if [ -x "$cache/kube-apiserver" ] && [ -x "$cache/etcd" ]; then
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
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2" \
		-o "$cache/kube-apiserver" ./cmd/kube-apiserver
	mkdir "$work/etcd" && cd "$work/etcd"
	go mod init etcdbuild
	GOFLAGS=-mod=mod go get go.etcd.io/etcd/server/v3@v3.7.3
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$cache/etcd" go.etcd.io/etcd/server/v3
} >&2
echo "$cache"
