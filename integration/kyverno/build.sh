#!/bin/sh
# Builds the kyverno CLI of Kyverno v1.19.1 (the release whose
# wgpolicyk8s.io CRD internal/scan validates against; keep them equal) from
# the Go module proxy into a cache directory, once, and prints the binary's
# path. `go install` refuses the module (it has a replace directive), so:
# its source from the module cache, built in a copy. A big build (3,032
# packages): not measured on an idle machine; on this 2-core machine shared
# with other builds (load about 35) it compiled about 25 packages a minute.
set -eu
version=v1.19.1
cache=${WARD_KYVERNO_CACHE:-/var/tmp/ward-kyverno-$version}
bin=$cache/kyverno
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d /var/tmp/ward-kyverno-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
	src=$(go mod download -json "github.com/kyverno/kyverno@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] || { echo "build.sh: go mod download found no source" >&2; exit 1; }
	cp -r "$src" "$work/src"
	chmod -R u+w "$work/src"
	cd "$work/src"
	# The machine's default cgo setting and -trimpath: an interrupted build
	# keeps its compiled packages in the Go build cache, and the next one
	# picks them up whatever directory the copy is in.
	nice -n 19 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" ./cmd/cli/kubectl-kyverno
	mv "$bin.tmp" "$bin"
} >&2
echo "$bin"
