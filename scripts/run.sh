#!/usr/bin/env bash
# The "start" command: installs what is missing, builds, starts the gateway.
#
#   bash scripts/run.sh [GATEWAY_FLAGS...]
#
# With no flags the gateway runs on its own defaults (port 9090, bind
# 127.0.0.1, metrics port 9100). Flags go to the binary unchanged, e.g.
#   bash scripts/run.sh --port 0 --metrics-port 0 --idle-timeout 10s
# Setup and build messages go to stderr, so stdout carries only the gateway's
# own output (its first line is "listening port=<p> metrics_port=<m>").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$ROOT/scripts/setup.sh" >&2
bash "$ROOT/scripts/build.sh" "$ROOT/build" >&2

BIN="$ROOT/build/gateway/flux-gateway"
[[ -x $BIN ]] || { echo "run: error: $BIN was not built" >&2; exit 1; }
echo "run: starting $BIN $*" >&2
exec "$BIN" "$@"
