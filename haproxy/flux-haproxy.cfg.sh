#!/usr/bin/env bash
# Writes the HAProxy configuration of a Flux cluster on stdout.
#
#   bash haproxy/flux-haproxy.cfg.sh [--socket PATH] PORT METRICS_PORT NODE...
#
# NODE is ID:ADDR:PORT:METRICS_PORT for each gateway node (started with
# --node-id ID --proxy-protocol). PORT is the clients' port and METRICS_PORT
# serves HAProxy's own Prometheus exporter (/metrics) and stats page (/stats),
# both on 127.0.0.1. --socket adds an admin runtime API socket (cluster.sh
# moves a restarted node's ports through it). Nothing in the output is edited by hand: scripts/cluster.sh
# regenerates it for every cluster it starts.
#
# Routing: the first frame is awaited (up to 1 s). A FLUX_RESUME goes to the
# node whose id forms the first 4 hex digits of the session id; every other
# connection, and a resume whose node is down, goes to the node with the
# fewest connections.
set -euo pipefail

die() { printf 'flux-haproxy.cfg: error: %s\n' "$*" >&2; exit 2; }

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }

# "FLUX_RESUME " (12 bytes) in hex: frame bytes 4..15, before the session id.
readonly RESUME_HEX=464C55585F524553554D4520

print_global() {
  local socket=$1
  cat <<CFG
global
    # No maxconn: HAProxy derives it from the file descriptor limit it gets.
    # One thread: the cluster runs on small machines next to its nodes.
    nbthread 1
${socket:+    stats socket ${socket} mode 600 level admin}

defaults
    mode tcp
    timeout connect 1s
    timeout client 10m
    timeout server 10m
    timeout client-fin 5s
    timeout server-fin 5s
    timeout check 1s
    # A failed connect is retried; the last try goes to another node.
    retries 3
    option redispatch

CFG
}

print_frontend() {
  local port=$1
  cat <<CFG
frontend flux
    bind 127.0.0.1:${port}
    # Wait for the whole first frame: payload_lv reads the 4-byte big-endian
    # length and is found only once that many payload bytes are buffered.
    tcp-request inspect-delay 1s
    tcp-request content accept if { req.payload_lv(0,4) -m found }
    default_backend flux_nodes

CFG
}

print_backend_head() {
  cat <<CFG
backend flux_nodes
    balance leastconn
    acl flux_resume req.payload(4,12),hex -m str ${RESUME_HEX}
    # Health: the node's /healthz on its metrics port (503 while draining).
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 500ms fall 2 rise 1 send-proxy-v2
CFG
}

# ID -> the 4 lowercase hex digits a session id of that node starts with.
node_hex() { printf '%04x' "$1"; }

print_use_server() {
  local id=$1
  printf '    use-server node%s if flux_resume { req.payload(16,4) -m str %s }\n' \
    "$id" "$(node_hex "$id")"
}

print_server() {
  local id=$1 addr=$2 port=$3 mport=$4
  printf '    server node%s %s:%s check port %s\n' "$id" "$addr" "$port" "$mport"
}

print_metrics_frontend() {
  local port=$1
  cat <<CFG

frontend flux_haproxy_metrics
    mode http
    bind 127.0.0.1:${port}
    timeout client 10s
    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
    stats refresh 5s
CFG
}

# Checks NODE arguments and splits each into the ID ADDR PORT MPORT arrays.
parse_nodes() {
  IDS=() ADDRS=() PORTS=() MPORTS=()
  local node id addr port mport
  for node in "$@"; do
    IFS=: read -r id addr port mport <<<"$node"
    [[ $id =~ ^[0-9]+$ && $id -le 65535 ]] || die "bad node id in '$node'"
    [[ $port =~ ^[0-9]+$ && $mport =~ ^[0-9]+$ && -n $addr ]] || die "bad node '$node' (want ID:ADDR:PORT:METRICS_PORT)"
    IDS+=("$id") ADDRS+=("$addr") PORTS+=("$port") MPORTS+=("$mport")
  done
}

main() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
  local socket=
  if [[ ${1:-} == --socket ]]; then
    socket=${2:?--socket wants a path}
    shift 2
  fi
  [[ $# -ge 3 ]] || die "want PORT METRICS_PORT NODE... (try --help)"
  local port=$1 metrics_port=$2 i
  shift 2
  [[ $port =~ ^[0-9]+$ && $metrics_port =~ ^[0-9]+$ ]] || die "ports must be numbers"
  parse_nodes "$@"
  print_global "$socket"
  print_frontend "$port"
  print_backend_head
  for i in "${!IDS[@]}"; do print_use_server "${IDS[$i]}"; done
  for i in "${!IDS[@]}"; do
    print_server "${IDS[$i]}" "${ADDRS[$i]}" "${PORTS[$i]}" "${MPORTS[$i]}"
  done
  print_metrics_frontend "$metrics_port"
}

main "$@"
