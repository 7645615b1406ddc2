#!/usr/bin/env bash
# The Debian package, end to end: cpack -G DEB from the build tree into a
# scratch directory, then
#   - its control fields (name, version, Depends from dpkg-shlibdeps, the
#     conffile) and its file list,
#   - stripped binaries and a changelog.gz whose top entry is this version,
#   - lintian: no error (warnings and info are printed, not fatal),
#   - the binary extracted with dpkg-deb -x: --version exits 0, and it
#     starts on free ports, prints its listening line, answers /healthz and
#     exits 0 on SIGTERM.
#
#   package_test.sh BUILD_DIR VERSION            run
#   package_test.sh --skip REASON                print SKIP and exit 77
#
# Only the release build dir builds the package (CTest registers the others
# with --skip: a sanitized binary is not what ships). Exit 77 is CTest's
# SKIP_RETURN_CODE for this test.
set -euo pipefail

if [[ ${1:-} == --skip ]]; then
  printf 'package_test: SKIP: %s\n' "${2:-not the release build dir}"
  exit 77
fi
BUILD=$1
VERSION=$2

fail() { printf 'package_test: FAIL: %s\n' "$*"; exit 1; }
step() { printf '\n-- %s\n' "$*"; }
for tool in cpack dpkg-deb lintian readelf; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup.sh --test installs it)"
done

WORK=$(mktemp -d /tmp/flux-package.XXXXXX)
GW_PID=
cleanup() {
  [[ -n $GW_PID ]] && kill -KILL "$GW_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "cpack -G DEB"
(cd "$BUILD" && timeout 120 cpack -G DEB -B "$WORK/out" --config CPackConfig.cmake) >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log"; fail "cpack failed"; }
debs=("$WORK"/out/*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || fail "expected one .deb, got: ${debs[*]}"
DEB=${debs[0]}
printf '%s (%s bytes)\n' "$(basename "$DEB")" "$(stat -c %s "$DEB")"

step "control fields"
field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == flux-gateway ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$VERSION" ]] || fail "Version: $(field Version), expected $VERSION"
DEPENDS=$(field Depends)
printf 'Depends: %s\n' "$DEPENDS"
for dep in libc6 libevent-core-2.1-7 libsystemd0 libprometheus-cpp-core1.0 libhiredis0.14 libstdc++6; do
  [[ ", $DEPENDS," == *", $dep "* || ", $DEPENDS," == *", $dep,"* ]] || fail "Depends lacks $dep"
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles >"$WORK/conffiles"
[[ $(cat "$WORK/conffiles") == /etc/default/flux-gateway ]] || fail "conffiles: $(cat "$WORK/conffiles")"
printf 'conffiles: /etc/default/flux-gateway\n'

step "files"
dpkg-deb -x "$DEB" "$WORK/root"
R=$WORK/root
for f in usr/bin/flux-gateway usr/bin/fluxbench lib/systemd/system/flux-gateway.service \
  etc/default/flux-gateway usr/share/doc/flux-gateway/copyright \
  usr/share/doc/flux-gateway/changelog.gz usr/share/flux-gateway/grafana/dashboards/flux-gateway.json \
  usr/share/flux-gateway/prometheus/prometheus.yml usr/share/flux-gateway/prometheus/alerts.yml; do
  [[ -f $R/$f ]] || fail "missing /$f"
done
[[ -x $R/usr/bin/flux-gateway && -x $R/usr/bin/fluxbench ]] || fail "binaries not executable"
for bin in flux-gateway fluxbench; do
  ! readelf -S "$R/usr/bin/$bin" | grep -q '\.symtab' || fail "/usr/bin/$bin is not stripped"
done
top=$(gzip -dc "$R/usr/share/doc/flux-gateway/changelog.gz" | head -1)
[[ $top == "flux-gateway ($VERSION) "* ]] || fail "changelog.gz top entry is '$top', not $VERSION"
grep -q '^FLUX_GATEWAY_OPTS=' "$R/etc/default/flux-gateway" || fail "/etc/default/flux-gateway lacks FLUX_GATEWAY_OPTS"
printf '%d files, binaries stripped, changelog at %s\n' "$(find "$R" -type f | wc -l)" "$VERSION"

step "lintian"
# --fail-on error: warnings are reported, not fatal. Overrides, if any, ship
# in the package (usr/share/lintian/overrides) and say why.
if ! timeout 120 lintian --fail-on error --display-info "$DEB" >"$WORK/lintian.txt" 2>&1; then
  cat "$WORK/lintian.txt"
  fail "lintian reports errors"
fi
grep -v 'running with root privileges' "$WORK/lintian.txt" || true
printf 'lintian: %s error(s), %s warning(s), %s info\n' \
  "$(grep -c '^E:' "$WORK/lintian.txt" || true)" "$(grep -c '^W:' "$WORK/lintian.txt" || true)" \
  "$(grep -c '^I:' "$WORK/lintian.txt" || true)"

step "the extracted binary"
GW=$R/usr/bin/flux-gateway
timeout 10 "$GW" --version || fail "--version exited $?"
mkfifo "$WORK/stdout"
"$GW" --port 0 --metrics-port 0 >"$WORK/stdout" 2>"$WORK/stderr" &
GW_PID=$!
exec 3<"$WORK/stdout"
line=
read -r -t 15 -u 3 line || { cat "$WORK/stderr"; fail "no listening line within 15 s"; }
printf '%s\n' "$line"
[[ $line =~ ^listening\ port=([0-9]+)\ metrics_port=([0-9]+)$ ]] || fail "unexpected line: $line"
METRICS_PORT=${BASH_REMATCH[2]}
exec 4<>"/dev/tcp/127.0.0.1/$METRICS_PORT" || fail "metrics port $METRICS_PORT refuses connections"
printf 'GET /healthz HTTP/1.0\r\n\r\n' >&4
read -r -t 10 -u 4 status_line || fail "no /healthz answer within 10 s"
exec 4<&-
[[ $status_line == *" 200 "* ]] || fail "/healthz: $status_line"
printf '/healthz: %s\n' "${status_line%$'\r'}"
kill -TERM "$GW_PID"
timeout 20 tail --pid="$GW_PID" -f /dev/null || fail "still running 20 s after SIGTERM"
rc=0
wait "$GW_PID" || rc=$?
GW_PID=
exec 3<&-
[[ $rc -eq 0 ]] || { cat "$WORK/stderr"; fail "exit status $rc after SIGTERM"; }
printf 'SIGTERM: exit 0\n'
printf '\npackage_test: PASS\n'
