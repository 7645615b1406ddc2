#!/usr/bin/env bash
# Starts a local Flux cluster: N gateway nodes behind one HAProxy.
#
#   bash scripts/cluster.sh [--nodes N] [--port P] [--control FIFO]
#                           [--session-store memory|redis|redis://HOST:PORT] [-- GATEWAY_FLAGS...]
#
# Node i (1..N) runs flux-gateway --bind 127.0.0.(10+i) --port 0
# --metrics-port 0 --node-id i --proxy-protocol GATEWAY_FLAGS. HAProxy
# (config from haproxy/flux-haproxy.cfg.sh) listens on 127.0.0.1:P (default
# 9090; 0 = pick a free port) and serves its Prometheus exporter (/metrics)
# and stats page (/stats) on another free port. Once HAProxy accepts, stdout
# gets exactly one line:
#   cluster port=<p> haproxy_metrics_port=<hp> nodes=<pid>:<addr>:<port>:<metrics_port>,...
# (with --session-store redis, " redis_port=<r>" is appended to it).
# Everything else goes to stderr. Stays in the foreground; SIGTERM or SIGINT
# stops HAProxy, the nodes (and the Redis it started) and exits 0.
#
# --session-store (default memory: each node keeps its own sessions): "redis"
# starts a redis-server on a free 127.0.0.1 port (--save '' --appendonly no:
# nothing on disk), waits for its PING and gives every node --session-store
# redis://127.0.0.1:<r>, so a session can be resumed on any node, also after
# its node died; "redis://HOST:PORT" uses that Redis (not started, not
# stopped, no redis_port in the line).
#
# --control FIFO: cluster.sh creates the FIFO and reads commands from it, one
# a line. "restart I" sets node I to drain in HAProxy, stops it (SIGTERM, wait
# for its exit), starts it again (same id and address, new ports), points
# HAProxy at the new ports through its runtime API and sets it ready; then
# "restarted node=I pid=<pid> port=<p> metrics_port=<m>" is appended to
# FIFO.out (rolling restarts, tests).
#
# Environment: FLUX_GATEWAY_BIN=path uses that binary and skips the build;
# FLUX_SKIP_SETUP=1 skips scripts/setup.sh (tests set both).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START_TIMEOUT=30 # seconds for each node's start line and for HAProxy

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,34s/^# \{0,1\}//p' "$0"; }

parse_args() {
  NODES=3 PORT=9090 CONTROL='' STORE=memory GATEWAY_FLAGS=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --nodes) NODES=${2:?--nodes wants a value}; shift 2 ;;
      --nodes=*) NODES=${1#*=}; shift ;;
      --port) PORT=${2:?--port wants a value}; shift 2 ;;
      --port=*) PORT=${1#*=}; shift ;;
      --control) CONTROL=${2:?--control wants a path}; shift 2 ;;
      --control=*) CONTROL=${1#*=}; shift ;;
      --session-store) STORE=${2:?--session-store wants a value}; shift 2 ;;
      --session-store=*) STORE=${1#*=}; shift ;;
      --) shift; GATEWAY_FLAGS=("$@"); break ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option '$1' (try --help)" ;;
    esac
  done
  [[ $NODES =~ ^[0-9]+$ && $NODES -ge 1 && $NODES -le 245 ]] || die "--nodes must be 1..245"
  [[ $PORT =~ ^[0-9]+$ && $PORT -le 65535 ]] || die "--port must be 0..65535"
  [[ $STORE == memory || $STORE == redis || $STORE =~ ^redis://[^/]+:[0-9]+$ ]] ||
    die "--session-store must be memory, redis or redis://HOST:PORT"
}

# Installs and builds like run.sh unless the environment says otherwise.
prepare() {
  [[ ${FLUX_SKIP_SETUP:-0} == 1 ]] || bash "$ROOT/scripts/setup.sh" >&2
  if [[ -n ${FLUX_GATEWAY_BIN:-} ]]; then
    BIN=$FLUX_GATEWAY_BIN
  else
    bash "$ROOT/scripts/build.sh" "$ROOT/build" >&2
    BIN="$ROOT/build/gateway/flux-gateway"
  fi
  [[ -x $BIN ]] || die "$BIN is not an executable"
  command -v haproxy >/dev/null 2>&1 || die "haproxy not found (bash scripts/setup.sh installs it)"
  if [[ $STORE == redis ]]; then
    REDIS_BIN=$(command -v redis-server || echo /usr/bin/redis-server)
    [[ -x $REDIS_BIN ]] || die "redis-server not found (bash scripts/setup.sh installs it)"
  fi
}

# A port free on 127.0.0.1 right now (the kernel's pick for port 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Kills everything started so far and waits for it. Runs once.
# shellcheck disable=SC2317  # reached through the traps
cleanup() {
  trap - EXIT TERM INT
  local pid
  for pid in ${HAPROXY_PID:-} "${NODE_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${HAPROXY_PID:-} "${NODE_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  # Redis last: the nodes' drain may still write to it.
  if [[ -n ${REDIS_PID:-} ]]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  if [[ -n ${TMP:-} ]]; then rm -rf "$TMP"; fi
  if [[ -n ${CONTROL:-} ]]; then rm -f "$CONTROL"; fi
}

# shellcheck disable=SC2317  # reached through the trap
on_signal() {
  log "stopping haproxy and ${#NODE_PIDS[@]} nodes${REDIS_PID:+ and redis}"
  cleanup
  exit 0
}

# Waits for node I's "listening port=<p> metrics_port=<m>" line.
read_start_line() {
  local i=$1 pid=$2 out=$3 deadline=$((SECONDS + START_TIMEOUT)) line
  while [[ $SECONDS -lt $deadline ]]; do
    line=$(head -n 1 "$out" 2>/dev/null || true)
    if [[ $line =~ ^listening\ port=([0-9]+)\ metrics_port=([0-9]+) ]]; then
      NODE_PORTS[i - 1]=${BASH_REMATCH[1]} NODE_MPORTS[i - 1]=${BASH_REMATCH[2]}
      return
    fi
    kill -0 "$pid" 2>/dev/null || die "node $i exited before listening"
    sleep 0.05
  done
  die "node $i printed no start line within ${START_TIMEOUT}s"
}

# Starts node I in the background as slot I-1 of the NODE_* arrays.
spawn_node() {
  local i=$1 addr="127.0.0.$((10 + $1))"
  "$BIN" --bind "$addr" --port 0 --metrics-port 0 --node-id "$i" --proxy-protocol \
    "${STORE_FLAGS[@]}" "${GATEWAY_FLAGS[@]}" >"$TMP/node$i.out" &
  NODE_PIDS[i - 1]=$! NODE_ADDRS[i - 1]=$addr
}

start_nodes() {
  local i
  for ((i = 1; i <= NODES; i++)); do spawn_node "$i"; done
  for ((i = 1; i <= NODES; i++)); do
    read_start_line "$i" "${NODE_PIDS[$((i - 1))]}" "$TMP/node$i.out"
  done
}

# True once a TCP connect to 127.0.0.1:$1 succeeds.
accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True once the Redis on 127.0.0.1:$1 answers PING with +PONG.
redis_pongs() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 1 reply <&3 && [[ $reply == $'+PONG\r' ]]
  ) 2>/dev/null
}

# --session-store: what every node gets, and the Redis this script owns.
# Memory: nothing (the gateway's default). A redis-server that exits at once
# (its port taken between free_port and its bind) is started again on
# another port.
start_store() {
  STORE_FLAGS=() REDIS_PORT='' REDIS_PID=''
  case "$STORE" in
    memory) return ;;
    redis://*) STORE_FLAGS=(--session-store "$STORE"); return ;;
  esac
  local attempt deadline
  for attempt in 1 2 3; do
    REDIS_PORT=$(free_port)
    "$REDIS_BIN" --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
      --dir "$TMP" --daemonize no --loglevel warning >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    deadline=$((SECONDS + START_TIMEOUT))
    while kill -0 "$REDIS_PID" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do
      if redis_pongs "$REDIS_PORT"; then
        STORE_FLAGS=(--session-store "redis://127.0.0.1:$REDIS_PORT")
        log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
        return
      fi
      sleep 0.05
    done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=''
    log "redis-server did not answer PING on port $REDIS_PORT (attempt $attempt): $(tail -n 3 "$TMP/redis.log")"
  done
  die "redis-server did not start"
}

start_haproxy() {
  local specs=() i deadline=$((SECONDS + START_TIMEOUT))
  [[ $PORT -ne 0 ]] || PORT=$(free_port)
  METRICS_PORT=$(free_port)
  for i in "${!NODE_PIDS[@]}"; do
    specs+=("$((i + 1)):${NODE_ADDRS[$i]}:${NODE_PORTS[$i]}:${NODE_MPORTS[$i]}")
  done
  bash "$ROOT/haproxy/flux-haproxy.cfg.sh" --socket "$TMP/haproxy.sock" \
    "$PORT" "$METRICS_PORT" "${specs[@]}" >"$TMP/haproxy.cfg"
  haproxy -db -f "$TMP/haproxy.cfg" >&2 &
  HAPROXY_PID=$!
  # The metrics frontend is polled: a probe of the client port would reach a node.
  until accepts "$METRICS_PORT"; do
    kill -0 "$HAPROXY_PID" 2>/dev/null || die "haproxy exited (config: $TMP/haproxy.cfg)"
    [[ $SECONDS -lt $deadline ]] || die "haproxy did not accept within ${START_TIMEOUT}s"
    sleep 0.05
  done
}

print_line() {
  local nodes=() i
  for i in "${!NODE_PIDS[@]}"; do
    nodes+=("${NODE_PIDS[$i]}:${NODE_ADDRS[$i]}:${NODE_PORTS[$i]}:${NODE_MPORTS[$i]}")
  done
  local IFS=,
  printf 'cluster port=%s haproxy_metrics_port=%s nodes=%s%s\n' "$PORT" "$METRICS_PORT" "${nodes[*]}" \
    "${REDIS_PID:+ redis_port=$REDIS_PORT}"
}

# One command to HAProxy's runtime API; its answer goes to stderr.
haproxy_api() {
  python3 - "$TMP/haproxy.sock" "$1" >&2 <<'PY'
import socket, sys
with socket.socket(socket.AF_UNIX) as s:
    s.settimeout(10)
    s.connect(sys.argv[1])
    s.sendall(sys.argv[2].encode() + b"\n")
    while chunk := s.recv(4096):
        sys.stderr.write(chunk.decode())
PY
}

# Drains node I, starts it again and moves HAProxy's server to its new ports.
restart_node() {
  local i=$1 slot
  [[ $i =~ ^[0-9]+$ && $i -ge 1 && $i -le $NODES ]] || { log "no node '$i'"; return; }
  slot=$((i - 1))
  log "restarting node $i (pid ${NODE_PIDS[$slot]})"
  # No new connections go to it from here on; its /healthz says so too after SIGTERM.
  haproxy_api "set server flux_nodes/node$i state drain"
  kill -TERM "${NODE_PIDS[$slot]}" 2>/dev/null || true
  wait "${NODE_PIDS[$slot]}" 2>/dev/null || true
  spawn_node "$i"
  read_start_line "$i" "${NODE_PIDS[$slot]}" "$TMP/node$i.out"
  haproxy_api "set server flux_nodes/node$i addr ${NODE_ADDRS[$slot]} port ${NODE_PORTS[$slot]}"
  haproxy_api "set server flux_nodes/node$i check-port ${NODE_MPORTS[$slot]}"
  haproxy_api "set server flux_nodes/node$i state ready"
  printf 'restarted node=%s pid=%s port=%s metrics_port=%s\n' "$i" "${NODE_PIDS[$slot]}" \
    "${NODE_PORTS[$slot]}" "${NODE_MPORTS[$slot]}" >>"$CONTROL.out"
}

# The FIFO exists before the cluster line is printed. It is opened read-write
# so that open() does not block and writers may come and go.
open_control() {
  rm -f "$CONTROL" "$CONTROL.out"
  mkfifo "$CONTROL"
  exec 3<>"$CONTROL"
}

# Serves --control commands while HAProxy lives.
serve_control() {
  local cmd arg
  while kill -0 "$HAPROXY_PID" 2>/dev/null; do
    if read -r -t 0.2 cmd arg <&3; then
      case "$cmd" in
        restart) restart_node "$arg" ;;
        *) log "unknown control command '$cmd'" ;;
      esac
    fi
  done
}

main() {
  parse_args "$@"
  prepare
  NODE_PIDS=() NODE_ADDRS=() NODE_PORTS=() NODE_MPORTS=() HAPROXY_PID='' REDIS_PID=''
  TMP=$(mktemp -d -t flux-cluster.XXXXXX)
  trap cleanup EXIT
  trap on_signal TERM INT
  start_store
  start_nodes
  start_haproxy
  [[ -z $CONTROL ]] || open_control
  print_line
  log "haproxy pid $HAPROXY_PID, config $TMP/haproxy.cfg; SIGTERM or Ctrl-C stops the cluster"
  # Nodes may die (or be killed by a test); the cluster lives as long as HAProxy.
  [[ -z $CONTROL ]] || serve_control
  local rc=0
  wait "$HAPROXY_PID" || rc=$?
  HAPROXY_PID=
  die "haproxy exited with status $rc"
}

main "$@"
