# bench/run's measuring helpers (sourced by bench/run, never run alone):
# the servers under test, the /proc and /stats samplers, fluxbench runs.
# They use bench/run's settings (RESULTS, NICE, the binaries) and log/die.
# shellcheck shell=bash

# --- Servers -------------------------------------------------------------------

SERVER_PID=""
SERVER_PORT=""
METRICS_PORT=""
STARTED_PIDS=()

# However the suite ends, no server or sampler it started outlives it.
cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do kill -KILL "$pid" 2> /dev/null || true; done
}
trap cleanup EXIT

# start_server NAME BINARY ARGS...: starts it, waits for its listening line.
start_server() {
  local name=$1 out=$RESULTS/$1.stdout
  shift
  COMMANDS+=("$(basename "$1") ${*:2} &   # $name")
  : > "$out"
  (run_niced "$@") > "$out" 2> "$RESULTS/$name.stderr" &
  SERVER_PID=$!
  STARTED_PIDS+=("$SERVER_PID")
  local line=""
  for _ in $(seq 100); do
    line=$(grep -m1 '^listening port=' "$out" || true)
    [[ -n $line ]] && break
    kill -0 "$SERVER_PID" 2> /dev/null || die "$name exited at start (see $RESULTS/$name.stderr)"
    sleep 0.1
  done
  [[ -n $line ]] || die "$name printed no listening line"
  SERVER_PORT=$(sed -E 's/.*port=([0-9]+) metrics_port=.*/\1/' <<< "$line")
  METRICS_PORT=$(sed -E 's/.*metrics_port=([0-9]+).*/\1/' <<< "$line")
  log "$name: pid $SERVER_PID, port $SERVER_PORT, metrics port $METRICS_PORT"
}

# stop_server PID: SIGTERM, then SIGKILL after 10 s.
stop_server() {
  local pid=$1
  kill -TERM "$pid" 2> /dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2> /dev/null || { wait "$pid" 2> /dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}

# --- /proc sampling -------------------------------------------------------------

SAMPLER_PID=""

# sample_proc PID FILE: 4 times a second until PID exits, one line each:
#   unix_time  process_cpu_ticks  rss_kib  machine_busy_ticks  machine_total_ticks
sample_proc() {
  local pid=$1 file=$2 stat rss k v rest
  local -a f
  while [[ -r /proc/$pid/stat ]]; do
    read -r stat < "/proc/$pid/stat" || break
    read -r -a f <<< "${stat##*) }"  # fields after "(comm) ": f[11] utime, f[12] stime
    rss=0
    while read -r k v rest; do [[ $k == VmRSS: ]] && { rss=$v; break; }; done < "/proc/$pid/status"
    read -r _ u n s i w q sq st rest < /proc/stat
    printf '%s %d %d %d %d\n' "$EPOCHREALTIME" $((f[11] + f[12])) "$rss" \
      $((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st)) >> "$file"
    sleep 0.25
  done
}

start_sampler() {
  sample_proc "$1" "$2" &
  SAMPLER_PID=$!
  STARTED_PIDS+=("$SAMPLER_PID")
}
stop_sampler() { kill "$SAMPLER_PID" 2> /dev/null || true; wait "$SAMPLER_PID" 2> /dev/null || true; }

# sample_stats URL FILE PERIOD: the gateway's /stats every PERIOD seconds until
# killed, one compact JSON line each (t = the gateway's clock, unix seconds).
sample_stats() {
  local url=$1 file=$2 period=$3
  while true; do
    curl -s --max-time 1 "$url" 2> /dev/null | jq -c '{
      t: .now_unix_seconds, rss: .process.resident_memory_bytes,
      open: .total.connections.open, ready: .total.connections.by_state.ready,
      attached: .total.sessions.attached, frames_in: .total.traffic.frames_in_total,
      replay_memory: .total.sessions.replay_memory_bytes,
      replay_frame_bytes: .total.sessions.replay_frame_bytes,
      allocations: (.total.pool.block_allocations_total + .total.pool.frame_node_allocations_total),
      buffers_in_use: .total.pool.block_bytes_in_use,
      util: [.reactors[].rates["1s"].loop_utilization], conns: [.reactors[].connections.open],
      frames: [.reactors[].rates["1s"].frames_in]}' >> "$file" 2> /dev/null || true
    sleep "$period"
  done
}
STATS_SAMPLER_PID=""
start_stats_sampler() {
  sample_stats "$1" "$2" "$3" &
  STATS_SAMPLER_PID=$!
  STARTED_PIDS+=("$STATS_SAMPLER_PID")
}
stop_stats_sampler() { kill "$STATS_SAMPLER_PID" 2> /dev/null || true; wait "$STATS_SAMPLER_PID" 2> /dev/null || true; }

# stats_at FILE T EXPR: EXPR of the last /stats sample taken at or before unix time T.
stats_at() {
  jq -rs --argjson t "$2" "map(select(.t <= \$t)) | last | ($3) // \"n/a\"" "$1" 2> /dev/null || echo n/a
}

CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)

# proc_window FILE T0 T1: "cpu_pct rss0_kib rss1_kib machine_busy_pct" between
# the samples nearest to the unix times T0 and T1.
proc_window() {
  awk -v t0="$2" -v t1="$3" -v hz="$CLK_TCK" -v ncpu="$NPROC" '
    { t[NR] = $1; c[NR] = $2; r[NR] = $3; b[NR] = $4; a[NR] = $5 }
    END {
      i0 = 1; i1 = NR
      for (i = 1; i <= NR; i++) { if (t[i] <= t0) i0 = i; if (t[i] <= t1) i1 = i }
      wall = t[i1] - t[i0]
      if (wall <= 0) { print "nan nan nan nan"; exit }
      printf "%.1f %d %d %.0f\n", (c[i1] - c[i0]) / hz / wall * 100, r[i0], r[i1],
             (a[i1] > a[i0]) ? (b[i1] - b[i0]) / (a[i1] - a[i0]) * 100 * ncpu : 0
    }' "$1"
}

# --- fluxbench ------------------------------------------------------------------

COMMANDS=()

# bench NAME ARGS...: fluxbench --json ARGS into RESULTS/NAME.json (progress
# lines into NAME.progress); records the command; never fails the suite.
bench() {
  local name=$1
  shift
  COMMANDS+=("fluxbench $*")
  log "$name: fluxbench $*"
  local rc=0
  (run_niced "$FLUXBENCH" --json "$@") > "$RESULTS/$name.json" 2> "$RESULTS/$name.progress" || rc=$?
  ((rc == 0)) || log "$name: fluxbench exited $rc (result $(jq -r .result "$RESULTS/$name.json" 2> /dev/null))"
}

# j NAME EXPR: one value from a result ("n/a" for null).
j() { jq -r "($2) // \"n/a\"" "$RESULTS/$1.json" 2> /dev/null || echo n/a; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
