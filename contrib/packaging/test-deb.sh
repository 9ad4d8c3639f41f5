#!/bin/sh
# test-deb.sh DIST: install ward's amd64 .deb with dpkg, run what an operator
# runs first, purge it, and check that nothing of it is left (make test-deb).
set -eu
dist=${1:?usage: test-deb.sh DIST}
deb=$(ls "$dist"/ward_*_amd64.deb)
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

if dpkg -s ward >/dev/null 2>&1; then
	fail "a ward package is already installed; not touching it"
fi
for f in /usr/bin/ward /etc/ward/policy.yaml; do
	[ ! -e "$f" ] || fail "$f exists before the install; not overwriting it"
done

dpkg -i "$deb"
trap 'dpkg -P ward >/dev/null 2>&1 || true' EXIT

/usr/bin/ward --version
/usr/bin/ward version --json | grep -q '"wardVersion"' || fail "ward version --json"
/usr/bin/ward policy check /etc/ward/policy.yaml
man -w ward-explain >/dev/null 2>&1 || [ -e /usr/share/man/man1/ward-explain.1.gz ] || fail "no man page"
[ -e /usr/lib/systemd/system/containerd.service.d/ward.conf ] || fail "no containerd drop-in"
[ -e /usr/lib/systemd/system/ward-metrics.service ] || fail "no ward-metrics unit"
if command -v systemd-analyze >/dev/null; then
	# Only its binary and man page are looked up outside the unit file.
	systemd-analyze verify /usr/lib/systemd/system/ward-metrics.service 2>&1 | grep -v "Command 'man " | grep . && fail "ward-metrics.service does not verify"
fi
# The metrics daemon the unit starts serves /metrics and stops on SIGTERM.
tmp=$(mktemp -d)
/usr/bin/ward metrics serve --listen 127.0.0.1:0 --log "$tmp/*.jsonl" 2>"$tmp/err" &
metrics=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q serving "$tmp/err" && break; sleep 0.5; done
url=$(sed -n 's|.*serving \(http://[^ ]*\) from.*|\1|p' "$tmp/err")
[ -n "$url" ] || fail "ward metrics serve did not start: $(cat "$tmp/err")"
curl -fsS "$url" | grep -q '^ward_build_info{version=' || fail "no ward_build_info at $url"
kill -TERM "$metrics"
wait "$metrics" || fail "ward metrics serve exited $? on SIGTERM"
echo "test-deb: ward metrics serve answered at $url and stopped on SIGTERM"
rm -rf "$tmp"
# doctor: 0 all passed, 4 a FAIL on this node; anything else is ward failing.
rc=0
/usr/bin/ward doctor || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 4 ] || fail "ward doctor exited $rc"

dpkg -P ward
trap - EXIT
for f in /usr/bin/ward /usr/bin/ward-runtime /usr/bin/containerd-shim-ward-v2 /usr/bin/ward-init \
	/etc/ward/policy.yaml /usr/lib/systemd/system/containerd.service.d/ward.conf /usr/lib/systemd/system/ward-metrics.service \
	/usr/share/man/man1/ward.1.gz; do
	[ ! -e "$f" ] || fail "$f left after dpkg -P"
done
echo "test-deb: PASS ($deb installed, doctor ran (exit $rc), purged cleanly)"
