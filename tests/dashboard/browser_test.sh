#!/usr/bin/env bash
# End-to-end test of the embedded dashboard in a real headless Chromium.
#
#   tests/dashboard/browser_test.sh GATEWAY_BIN OUT_DIR
#
# 1. starts GATEWAY_BIN --port 0 --metrics-port 0 and reads the ports from
#    its `listening port=<p> metrics_port=<m>` line;
# 2. connects $FLUX_DASHBOARD_CLIENTS (20) clients that handshake and keep
#    echoing (load_clients.py) and waits until /stats counts them ready;
# 3. loads http://127.0.0.1:<m>/ in headless Chromium with a virtual-time
#    budget (timers run ahead, but virtual time stops while a fetch is in
#    flight, so every poll is a real /stats request) and checks the dumped
#    DOM: uPlot canvases present, data-updates >= 2, #ready-connections
#    data-raw == clients == total.connections.by_state.ready of a curl of /stats;
#    the loop profile chart, the recent stalls table (its threshold that of
#    a curl of /stalls) and the top connections table (min(10, clients)
#    rows, each with a TCP_INFO rtt);
# 4. saves OUT_DIR/dashboard.png (1600x1100) and the DOM, logs and /stats;
# 5. SIGTERMs the gateway (must exit 0) and checks the clients saw only
#    correct echoes.
#
# Every wait has a deadline; the trap kills whatever is still running.
# Exits 0 on success, 1 with a message on stderr otherwise (a missing
# Chromium is a failure: scripts/setup.sh --test installs it).
# Environment: CHROMIUM (default: chromium), FLUX_DASHBOARD_CLIENTS (20).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLIENTS=${FLUX_DASHBOARD_CLIENTS:-20}
CHROMIUM=${CHROMIUM:-chromium}
START_TIMEOUT_S=15
READY_TIMEOUT_S=20
CHROMIUM_TIMEOUT_S=90
STOP_TIMEOUT_S=10
VIRTUAL_TIME_MS=6000

log() { printf 'browser_test: %s\n' "$*"; }
fail() {
  printf 'browser_test: FAIL: %s\n' "$*" >&2
  exit 1
}

if [[ $# -ne 2 ]]; then
  sed -n '2,24s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
GATEWAY=$1
OUT=$2
[[ -x $GATEWAY ]] || fail "gateway binary '$GATEWAY' is not an executable file"
for tool in curl python3 "$CHROMIUM"; do
  command -v "$tool" >/dev/null || fail "$tool not found (bash scripts/setup.sh --test)"
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{dashboard.png,dom.html,stats.json,gateway.stdout,gateway.stderr,clients.log,chromium-*.log}

GATEWAY_PID=""
CLIENTS_PID=""
PROFILES=()
WAIT_DETAIL=""

# Sends SIGTERM to PID, waits up to SECONDS for it to go, then SIGKILLs it.
stop_process() {
  local pid=$1 seconds=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM for ${seconds}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

cleanup() {
  local rc=$?
  [[ -n $CLIENTS_PID ]] && stop_process "$CLIENTS_PID" 3 || true
  [[ -n $GATEWAY_PID ]] && stop_process "$GATEWAY_PID" 3 || true
  local dir
  for dir in "${PROFILES[@]}"; do rm -rf "$dir"; done
  if ((rc != 0)); then
    log "artifacts and logs in $OUT"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Deadline helper: wait_for SECONDS WHAT CMD... retries CMD every 100 ms.
wait_for() {
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "timed out after ${seconds}s waiting for $what${WAIT_DETAIL:+ ($WAIT_DETAIL)}"
}

gateway_alive() {
  kill -0 "$GATEWAY_PID" 2>/dev/null || fail "gateway exited early; stderr: $(tail -n 20 "$OUT/gateway.stderr")"
}

# ---- 1. gateway ---------------------------------------------------------

"$GATEWAY" --port 0 --metrics-port 0 >"$OUT/gateway.stdout" 2>"$OUT/gateway.stderr" &
GATEWAY_PID=$!
listening_line() {
  gateway_alive
  grep -qE '^listening port=[0-9]+ metrics_port=[0-9]+$' "$OUT/gateway.stdout"
}
wait_for "$START_TIMEOUT_S" "the 'listening port=<p> metrics_port=<m>' line" listening_line
LINE=$(grep -E '^listening port=' "$OUT/gateway.stdout" | head -n 1)
PORT=$(sed -E 's/^listening port=([0-9]+) metrics_port=([0-9]+)$/\1/' <<<"$LINE")
METRICS_PORT=$(sed -E 's/^listening port=([0-9]+) metrics_port=([0-9]+)$/\2/' <<<"$LINE")
((PORT > 0)) || fail "gateway printed port=0: '$LINE'"
((METRICS_PORT > 0)) || fail "gateway printed metrics_port=0: no metrics HTTP server in this build? ('$LINE')"
BASE="http://127.0.0.1:$METRICS_PORT"
log "gateway pid $GATEWAY_PID: port $PORT, dashboard $BASE/"

http_ok() { curl -fsS --max-time 2 -o /dev/null "$1" 2>/dev/null; }
dashboard_served() { gateway_alive && http_ok "$BASE/" && http_ok "$BASE/stats"; }
wait_for "$START_TIMEOUT_S" "GET / and GET /stats to answer 200" dashboard_served
for asset in /format.js /charts.js /app.js /style.css /uPlot.iife.min.js /uPlot.min.css; do
  http_ok "$BASE$asset" || fail "GET $asset did not answer 200"
done

# Prints total.connections.by_state.ready of a fresh /stats (empty on any error).
stats_ready() {
  curl -fsS --max-time 2 "$BASE/stats" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["connections"]["by_state"]["ready"])' 2>/dev/null || true
}

# ---- 2. clients ---------------------------------------------------------

python3 "$HERE/load_clients.py" --port "$PORT" --clients "$CLIENTS" --rate 20 --duration 240 \
  >"$OUT/clients.log" 2>&1 &
CLIENTS_PID=$!
clients_ready() {
  kill -0 "$CLIENTS_PID" 2>/dev/null || fail "load clients exited early: $(tail -n 5 "$OUT/clients.log")"
  grep -qx "ready $CLIENTS" "$OUT/clients.log"
}
wait_for "$READY_TIMEOUT_S" "$CLIENTS clients to reach READY" clients_ready
stats_counts_clients() {
  gateway_alive
  local ready
  ready=$(stats_ready)
  WAIT_DETAIL="last value: '$ready'"
  [[ $ready == "$CLIENTS" ]]
}
wait_for "$READY_TIMEOUT_S" "/stats total.connections.by_state.ready == $CLIENTS" stats_counts_clients
WAIT_DETAIL=""
log "$CLIENTS clients ready and counted by /stats"

# ---- 3. the page in Chromium --------------------------------------------

# run_chromium LOG ARGS...: headless Chromium on the dashboard, bounded by
# `timeout` (which kills Chromium's whole process group). The flags keep it
# off the network (no component updates, sync or QUIC probes) and working in
# containers (no sandbox as root, no reliance on a small /dev/shm).
run_chromium() {
  local logfile=$1 profile
  shift
  profile=$(mktemp -d)
  PROFILES+=("$profile")
  timeout -k 5 "$CHROMIUM_TIMEOUT_S" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage \
    --user-data-dir="$profile" --virtual-time-budget="$VIRTUAL_TIME_MS" "$@" "$BASE/" 2>"$logfile"
}

run_chromium "$OUT/chromium-dom.log" --dump-dom >"$OUT/dom.html" ||
  fail "chromium --dump-dom failed (exit $?); see $OUT/chromium-dom.log"
curl -fsS --max-time 2 "$BASE/stats" >"$OUT/stats.json" || fail "GET /stats failed after the page load"

curl -fsS --max-time 2 "$BASE/stalls" >"$OUT/stalls.json" || fail "GET /stalls failed after the page load"

python3 - "$OUT/dom.html" "$OUT/stats.json" "$CLIENTS" "$OUT/stalls.json" <<'PY' || fail "DOM checks failed (see above; DOM in $OUT/dom.html)"
import json
import sys
from html.parser import HTMLParser

dom_path, stats_path, clients, stalls_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Dom(HTMLParser):
    """Collects elements by id, <body> attributes and canvases under .uplot."""

    def __init__(self):
        super().__init__()
        self.stack = []  # class lists of the open elements
        self.ids = {}
        self.body = {}
        self.uplots = 0
        self.uplot_canvases = 0
        self.rtt_cells = 0
        self.rtt_units = True
        self.in_rtt = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "body":
            self.body = a
        if "uplot" in classes:
            self.uplots += 1
        if tag == "canvas" and any("uplot" in c for c in self.stack):
            self.uplot_canvases += 1
        if tag == "td" and "rtt" in classes:
            self.rtt_cells += 1
            self.in_rtt = True
        if tag not in VOID:
            self.stack.append(classes)

    def handle_data(self, data):
        if self.in_rtt:
            self.rtt_units = self.rtt_units and any(u in data for u in ("µs", "ms", "ns"))
            self.in_rtt = False

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()


dom = Dom()
with open(dom_path, encoding="utf-8") as f:
    dom.feed(f.read())
with open(stats_path) as f:
    stats = json.load(f)
with open(stalls_path) as f:
    stalls = json.load(f)

errors = []
def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message)
    if not ok:
        errors.append(message)

check(dom.uplots >= 8, f"{dom.uplots} uPlot charts (.uplot) rendered, want >= 8")
check("chart-profile" in dom.ids, "the loop profile chart (#chart-profile) is on the page")
stalls_table = dom.ids.get("stalls-table", {})
check(stalls_table.get("data-threshold") == str(stalls["threshold_seconds"]),
      f"#stalls-table data-threshold = {stalls_table.get('data-threshold')!r} is /stalls "
      f"threshold_seconds {stalls['threshold_seconds']}")
rows = stalls_table.get("data-rows")
check(rows not in (None, "") and int(rows) >= 0, f"#stalls-table data-rows = {rows!r} (stalls rendered)")
top = dom.ids.get("busiest-table", {}).get("data-rows")
check(top not in (None, "") and int(top) == min(10, clients),
      f"#busiest-table data-rows = {top!r}, want {min(10, clients)} (top connections)")
check(dom.rtt_cells >= min(10, clients) and dom.rtt_units,
      f"{dom.rtt_cells} rtt cells with a duration unit (TCP_INFO in the top connections)")
check(dom.uplot_canvases >= dom.uplots > 0, f"{dom.uplot_canvases} <canvas> inside .uplot")
updates = int(dom.body.get("data-updates") or 0)
check(updates >= 2, f"body data-updates = {updates}, want >= 2")
banner = dom.ids.get("banner", {})
check("hidden" in banner, "the 'Gateway unreachable' banner is hidden")
ready_raw = dom.ids.get("ready-connections", {}).get("data-raw")
stats_ready = stats["total"]["connections"]["by_state"]["ready"]
check(ready_raw is not None and ready_raw != "" and float(ready_raw) == clients,
      f"#ready-connections data-raw = {ready_raw!r}, want {clients}")
check(ready_raw not in (None, "") and float(ready_raw) == stats_ready,
      f"#ready-connections data-raw = {ready_raw!r} equals /stats total.connections.by_state.ready = {stats_ready}")
for key in ("frames-in-rate", "echo-p99", "loop-lag-p99", "cpu-percent", "rss", "uptime"):
    raw = dom.ids.get(key, {}).get("data-raw")
    try:
        ok = raw not in (None, "") and float(raw) >= 0
    except ValueError:
        ok = False
    check(ok, f"#{key} data-raw = {raw!r} is a number")
sys.exit(1 if errors else 0)
PY

run_chromium "$OUT/chromium-screenshot.log" --hide-scrollbars --window-size=1600,1100 \
  --screenshot="$OUT/dashboard.png" >/dev/null ||
  fail "chromium --screenshot failed; see $OUT/chromium-screenshot.log"
[[ -s $OUT/dashboard.png && $(head -c 4 "$OUT/dashboard.png" | od -An -c | tr -d ' ') == '211PNG' ]] ||
  fail "no PNG screenshot at $OUT/dashboard.png"
log "screenshot: $OUT/dashboard.png"

# ---- 4. shutdown --------------------------------------------------------

kill -TERM "$GATEWAY_PID"
gateway_gone() { ! kill -0 "$GATEWAY_PID" 2>/dev/null; }
wait_for "$STOP_TIMEOUT_S" "the gateway to exit after SIGTERM" gateway_gone
GATEWAY_RC=0
wait "$GATEWAY_PID" || GATEWAY_RC=$?
GATEWAY_PID=""
((GATEWAY_RC == 0)) || fail "gateway exited with status $GATEWAY_RC after SIGTERM (want 0)"

clients_gone() { ! kill -0 "$CLIENTS_PID" 2>/dev/null; }
wait_for "$STOP_TIMEOUT_S" "the load clients to exit after the gateway closed them" clients_gone
CLIENTS_RC=0
wait "$CLIENTS_PID" || CLIENTS_RC=$?
CLIENTS_PID=""
((CLIENTS_RC == 0)) || fail "load clients failed (exit $CLIENTS_RC): $(grep error "$OUT/clients.log" | head -n 5)"

log "OK: dashboard rendered with live data for $CLIENTS clients ($(tail -n 1 "$OUT/clients.log"))"
