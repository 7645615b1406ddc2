#!/usr/bin/env bash
# systemd-analyze on packaging/flux-gateway.service, offline (no systemd as
# PID 1 needed): `verify --root=DIR` loads the unit from a scratch root that
# holds it at /lib/systemd/system, the gateway binary at /usr/bin (verify
# checks that ExecStart= is executable) and the host's targets and slices
# (its default dependencies: sysinit.target, basic.target, system.slice...).
#
#   unit_verify_test.sh UNIT_FILE GATEWAY_BIN
#
# Passes when verify prints nothing and exits 0 (it exits 0 on unknown keys
# and bad values too, so any output fails), a deliberately broken copy does
# make it complain (the check can fail), and `security --offline` rates the
# sandbox at exposure 2.0 or less ("OK"; 10 is unsandboxed).
set -euo pipefail

UNIT=$1
GATEWAY=$2
NAME=flux-gateway.service
MAX_EXPOSURE_TENTHS=20

fail() { printf 'unit_verify_test: FAIL: %s\n' "$*"; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian package systemd; scripts/setup.sh --test)"

ROOT=$(mktemp -d /tmp/flux-unit-root.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/usr/bin" "$ROOT/lib/systemd/system"
install -m 0755 "$GATEWAY" "$ROOT/usr/bin/flux-gateway"
cp /lib/systemd/system/*.target /lib/systemd/system/*.slice "$ROOT/lib/systemd/system/"

verify() {
  install -m 0644 "$1" "$ROOT/lib/systemd/system/$NAME"
  timeout 60 systemd-analyze verify --man=no --root="$ROOT" "$NAME" 2>&1
}

printf 'systemd %s\n' "$(systemd-analyze --version | head -1)"
if ! out=$(verify "$UNIT"); then
  fail "systemd-analyze verify exited non-zero: $out"
fi
[[ -z $out ]] || fail "systemd-analyze verify complained: $out"
printf 'verify: clean\n'

# The negative control: an unknown key and a bad Type= must be reported.
sed -e 's/^Type=notify$/Type=notifyy/' -e 's/^\[Service\]$/[Service]\nNoSuchKey=1/' "$UNIT" >"$ROOT/broken"
broken=$(verify "$ROOT/broken" || true)
[[ $broken == *notifyy* && $broken == *NoSuchKey* ]] || fail "verify did not catch a broken unit: $broken"
printf 'verify: a broken copy is reported (%d lines)\n' "$(wc -l <<<"$broken")"

install -m 0644 "$UNIT" "$ROOT/lib/systemd/system/$NAME"
security=$(timeout 60 systemd-analyze security --offline=yes --root="$ROOT" \
  --threshold=$MAX_EXPOSURE_TENTHS "$NAME" 2>&1) || fail "exposure above $((MAX_EXPOSURE_TENTHS / 10)).$((MAX_EXPOSURE_TENTHS % 10)): $security"
grep -v '^✓' <<<"$security" | sed 's/[[:space:]]*$//'
printf 'unit_verify_test: PASS\n'
