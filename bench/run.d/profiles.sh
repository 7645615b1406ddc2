# bench/run's profiles (sourced by bench/run, never run alone): one
# function per profile of bench/run's header, each recording its figures
# in RESULTS and in the globals save_state writes to state.json.
# shellcheck shell=bash disable=SC2034  # its globals are read by bench/run (save_state)

# --- Profiles -------------------------------------------------------------------

# alternate_rounds A A_PORT A_METRICS B B_PORT B_METRICS ARGS...: ROUNDS rounds
# of fluxbench ARGS against the servers A and B (results A-ROUND.json and
# B-ROUND.json), A first in odd rounds, B in even ones, so that neither
# always follows the other.
alternate_rounds() {
  local a=$1 a_port=$2 a_metrics=$3 b=$4 b_port=$5 b_metrics=$6 round
  shift 6
  for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
      bench "$a-$round" --port "$a_port" "$@" --stats-url "http://127.0.0.1:$a_metrics/stats"
      bench "$b-$round" --port "$b_port" "$@" --stats-url "http://127.0.0.1:$b_metrics/stats"
    else
      bench "$b-$round" --port "$b_port" "$@" --stats-url "http://127.0.0.1:$b_metrics/stats"
      bench "$a-$round" --port "$a_port" "$@" --stats-url "http://127.0.0.1:$a_metrics/stats"
    fi
  done
}

# Load average (1 min) when each profile starts and ends.
declare -A LOAD
loadavg() { cut -d' ' -f1 /proc/loadavg; }

declare -A SEED
seed_profile() {
  local warmup duration
  LOAD[seed]=$(loadavg)
  # Each session takes its replay block with its first data frame: the
  # warm-up must give every connection a few frames before RSS is "start".
  warmup=$(dur 10000 3000)
  duration=$(dur 60000 3000)
  start_server seed-gateway "$GATEWAY" --port 0 --metrics-port 0
  local gw=$SERVER_PID
  start_sampler "$gw" "$RESULTS/seed.proc"
  sleep 1  # an idle sample or four before the connections arrive
  bench seed --port "$SERVER_PORT" --conns "$SEED_CONNS" --rate "$SEED_CONNS" --size 64 \
    --connect-rate 5000 --warmup "$warmup" --duration "$duration" \
    --stats-url "http://127.0.0.1:$METRICS_PORT/stats"
  stop_sampler
  stop_server "$gw"
  LOAD[seed]+=" -> $(loadavg)"
  local t0 t1 idle
  t0=$(j seed .measure.start_unix_seconds)
  t1=$(j seed .measure.end_unix_seconds)
  read -r "SEED[cpu]" "SEED[rss0]" "SEED[rss1]" "SEED[busy]" < <(proc_window "$RESULTS/seed.proc" "$t0" "$t1")
  idle=$(head -1 "$RESULTS/seed.proc" | awk '{ print $3 }')
  SEED[rss_idle]=$idle
}

# Closed-loop frames/s of the gateway per round: the curve profile's 100 %.
declare -a TP_GATEWAY=()
throughput_profile() {
  local warmup duration round
  LOAD[throughput]=$(loadavg)
  warmup=$(dur 1000 500)
  duration=$(dur 5000 2000)
  start_server tp-gateway "$GATEWAY" --port 0 --metrics-port 0
  local gw=$SERVER_PID gw_port=$SERVER_PORT gw_metrics=$METRICS_PORT
  start_server tp-baseline "$BASELINE" --port 0
  local bl=$SERVER_PID bl_port=$SERVER_PORT
  for round in $(seq "$ROUNDS"); do
    bench "tp-gateway-$round" --port "$gw_port" --conns 100 --window 16 --size 64 \
      --warmup "$warmup" --duration "$duration" --stats-url "http://127.0.0.1:$gw_metrics/stats"
    TP_GATEWAY+=("$(j "tp-gateway-$round" .throughput.frames_per_second)")
    bench "tp-baseline-$round" --port "$bl_port" --conns 100 --window 16 --size 64 \
      --warmup "$warmup" --duration "$duration"
  done
  stop_server "$gw"
  stop_server "$bl"
  LOAD[throughput]+=" -> $(loadavg)"
}

declare -A CHURN
churn_profile() {
  local warmup duration
  LOAD[churn]=$(loadavg)
  warmup=$(dur 2000 500)
  duration=$(dur 30000 3000)
  start_server churn-gateway "$GATEWAY" --port 0 --metrics-port 0
  local gw=$SERVER_PID
  bench churn --port "$SERVER_PORT" --conns "$CHURN_CONNS" --window 4 --size 64 --churn 100 \
    --connect-rate 5000 --warmup "$warmup" --duration "$duration" \
    --stats-url "http://127.0.0.1:$METRICS_PORT/stats"
  # Like stop_server, but keeps the gateway's exit status (0 expected).
  local rc=0
  kill -TERM "$gw" 2> /dev/null || true
  for _ in $(seq 100); do kill -0 "$gw" 2> /dev/null || break; sleep 0.1; done
  kill -0 "$gw" 2> /dev/null && { kill -KILL "$gw" 2> /dev/null || true; }
  wait "$gw" 2> /dev/null || rc=$?
  CHURN[gateway_exit]=$rc
  LOAD[churn]+=" -> $(loadavg)"
}

CAPACITY=0
curve_profile() {
  local warmup duration pct rate
  LOAD[curve]=$(loadavg)
  warmup=$(dur 2000 500)
  duration=$(dur 10000 2000)
  start_server curve-gateway "$GATEWAY" --port 0 --metrics-port 0
  local gw=$SERVER_PID gw_port=$SERVER_PORT gw_metrics=$METRICS_PORT
  start_server curve-baseline "$BASELINE" --port 0
  local bl=$SERVER_PID bl_port=$SERVER_PORT
  for pct in $STEPS; do
    rate=$(awk -v c="$CAPACITY" -v p="$pct" 'BEGIN { printf "%d", c * p / 100 }')
    bench "curve-gateway-$pct" --port "$gw_port" --conns 100 --rate "$rate" --size 64 \
      --warmup "$warmup" --duration "$duration" --stats-url "http://127.0.0.1:$gw_metrics/stats"
    bench "curve-baseline-$pct" --port "$bl_port" --conns 100 --rate "$rate" --size 64 \
      --warmup "$warmup" --duration "$duration"
  done
  stop_server "$gw"
  stop_server "$bl"
  LOAD[curve]+=" -> $(loadavg)"
}

# Profile 4: idle connections, RSS per connection.
declare -A IDLE
scale_profile() {
  local warmup duration t_before
  LOAD[scale]=$(loadavg)
  warmup=$(dur 5000 2000)
  duration=$(dur 20000 5000)
  # --idle-timeout 0: idle is the point here (the default closes READY
  # connections silent for 60 s).
  start_server scale-gateway "$GATEWAY" --port 0 --metrics-port 0 --idle-timeout 0
  local gw=$SERVER_PID gw_port=$SERVER_PORT gw_metrics=$METRICS_PORT
  start_sampler "$gw" "$RESULTS/scale.proc"
  start_stats_sampler "http://127.0.0.1:$gw_metrics/stats" "$RESULTS/scale.stats" 1
  sleep 2  # idle samples before any connection
  t_before=$EPOCHREALTIME
  # --rate 1 in total: each connection sends a frame every SCALE_CONNS seconds
  # on average, so all but a handful stay idle (handshaken, no data frame).
  bench scale --port "$gw_port" --conns "$SCALE_CONNS" --src-ips 2 --rate 1 --size 64 \
    --connect-rate 10000 --connect-timeout 30s --warmup "$warmup" --duration "$duration" \
    --stats-url "http://127.0.0.1:$gw_metrics/stats"
  stop_stats_sampler
  stop_sampler
  stop_server "$gw"
  LOAD[scale]+=" -> $(loadavg)"
  local t1
  t1=$(j scale .measure.end_unix_seconds)
  IDLE[rss_idle]=$(awk -v t="$t_before" '$1 <= t { r = $3 } END { print r + 0 }' "$RESULTS/scale.proc")
  IDLE[rss_conns]=$(awk -v t="$t1" '$1 <= t { r = $3 } END { print r + 0 }' "$RESULTS/scale.proc")
  IDLE[ready]=$(j scale .connections.ready)
  IDLE[per_conn]=$(awk -v a="${IDLE[rss_idle]}" -v b="${IDLE[rss_conns]}" -v n="${IDLE[ready]}" \
    'BEGIN { if (n + 0 > 0) printf "%.0f", (b - a) * 1024 / n; else print "n/a" }')
  IDLE[open]=$(stats_at "$RESULTS/scale.stats" "$t1" .open)
  IDLE[stats_rss]=$(stats_at "$RESULTS/scale.stats" "$t1" .rss)
  IDLE[stats_rss_idle]=$(stats_at "$RESULTS/scale.stats" "$t_before" .rss)
  IDLE[replay_memory]=$(stats_at "$RESULTS/scale.stats" "$t1" .replay_memory)
  IDLE[buffers_in_use]=$(stats_at "$RESULTS/scale.stats" "$t1" .buffers_in_use)
  # fluxbench's own /stats poll can fail here (its descriptors go to the
  # connections), so the allocations while measured come from the suite's samples.
  local a0 a1
  a0=$(stats_at "$RESULTS/scale.stats" "$(j scale .measure.start_unix_seconds)" .allocations)
  a1=$(stats_at "$RESULTS/scale.stats" "$t1" .allocations)
  IDLE[allocs]=$(awk -v a="$a0" -v b="$a1" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else print b - a }')
}

# Profile 5: metrics on (the suite's gateway) vs compiled out, alternating.
metrics_profile() {
  local warmup duration
  LOAD[metrics]=$(loadavg)
  warmup=$(dur 1000 500)
  duration=$(dur 5000 2000)
  start_server mo-on-gateway "$GATEWAY" --port 0 --metrics-port 0
  local on=$SERVER_PID on_port=$SERVER_PORT on_metrics=$METRICS_PORT
  start_server mo-off-gateway "$GATEWAY_NOMETRICS" --port 0 --metrics-port 0
  local off=$SERVER_PID off_port=$SERVER_PORT off_metrics=$METRICS_PORT
  local args=(--conns 100 --window 16 --size 64 --warmup "$warmup" --duration "$duration")
  alternate_rounds mo-on "$on_port" "$on_metrics" mo-off "$off_port" "$off_metrics" "${args[@]}"
  stop_server "$on"
  stop_server "$off"
  LOAD[metrics]+=" -> $(loadavg)"
}

# scrape_loop URL TAG FILE: fetches URL 10 times a second until killed, from one
# curl process (--rate, one kept-alive connection: no fork per fetch to load the
# shared cores); one line per fetch into FILE: TAG status seconds.
scrape_loop() {
  exec curl -s --max-time 36000 --rate 10/s -w "%{stderr}$2 %{http_code} %{time_total}\n" \
    "$1?n=[1-1000000]" > /dev/null 2>> "$3"
}

# Profile 6: the seed load (shorter) with and without scraping, alternating.
declare -a SC_FETCH_RATE=()
scrape_profile() {
  local warmup duration round pid pid2 t0
  LOAD[scrape]=$(loadavg)
  warmup=$(dur 5000 2000)
  duration=$(dur 15000 3000)
  start_server scrape-gateway "$GATEWAY" --port 0 --metrics-port 0
  local gw=$SERVER_PID gw_port=$SERVER_PORT gw_metrics=$METRICS_PORT
  local args=(--port "$gw_port" --conns "$SEED_CONNS" --rate "$SEED_CONNS" --size 64 --connect-rate 5000
    --warmup "$warmup" --duration "$duration" --stats-url "http://127.0.0.1:$gw_metrics/stats")
  for round in $(seq "$SCRAPE_ROUNDS"); do
    bench "scrape-quiet-$round" "${args[@]}"
    : > "$RESULTS/scrape-$round.fetches"
    scrape_loop "http://127.0.0.1:$gw_metrics/metrics" metrics "$RESULTS/scrape-$round.fetches" &
    pid=$!
    STARTED_PIDS+=("$pid")
    scrape_loop "http://127.0.0.1:$gw_metrics/stats" stats "$RESULTS/scrape-$round.fetches" &
    pid2=$!
    STARTED_PIDS+=("$pid2")
    t0=$EPOCHREALTIME
    COMMANDS+=("curl -s --rate 10/s 'http://127.0.0.1:$gw_metrics/metrics?n=[1-1000000]' > /dev/null &   # scraper, round $round"
      "curl -s --rate 10/s 'http://127.0.0.1:$gw_metrics/stats?n=[1-1000000]' > /dev/null &   # scraper, round $round")
    bench "scrape-loaded-$round" "${args[@]}"
    kill "$pid" "$pid2" 2> /dev/null || true
    wait "$pid" "$pid2" 2> /dev/null || true
    SC_FETCH_RATE+=("$(awk -v t0="$t0" -v t1="$EPOCHREALTIME" '$1 == "metrics" { m++ } $1 == "stats" { s++ } $2 != 200 { bad++ }
      END { printf "%.1f %.1f %d", m / (t1 - t0), s / (t1 - t0), bad }' "$RESULTS/scrape-$round.fetches")")
  done
  stop_server "$gw"
  LOAD[scrape]+=" -> $(loadavg)"
}

# Profile 7b: replay on (default 256 frames) vs off, then replay memory at scale.
declare -A RPM
replay_profile() {
  local warmup duration
  LOAD[replay]=$(loadavg)
  warmup=$(dur 1000 500)
  duration=$(dur 5000 2000)
  start_server rp-on-gateway "$GATEWAY" --port 0 --metrics-port 0
  local on=$SERVER_PID on_port=$SERVER_PORT on_metrics=$METRICS_PORT
  start_server rp-off-gateway "$GATEWAY" --port 0 --metrics-port 0 --replay-frames 0
  local off=$SERVER_PID off_port=$SERVER_PORT off_metrics=$METRICS_PORT
  local args=(--conns 100 --window 16 --size 64 --warmup "$warmup" --duration "$duration")
  alternate_rounds rp-on "$on_port" "$on_metrics" rp-off "$off_port" "$off_metrics" "${args[@]}"
  stop_server "$on"
  stop_server "$off"

  # Replay memory: a 4 KiB block holds ~60 64-byte frames, so a session takes
  # blocks at its frames 1, 61, 121, 181, 241 and, as 256 frames straddle up to
  # 6 blocks, a last one at frame ~301; only then is the pool in steady state.
  # The warm-up (40 s at 10 frames/s per connection) is sized for that.
  local t_before t0 t1
  warmup=$(dur 40000 3000)
  RPM[warmup]=$warmup
  duration=$(dur 10000 3000)
  start_server replay-gateway "$GATEWAY" --port 0 --metrics-port 0
  local gw=$SERVER_PID gw_port=$SERVER_PORT gw_metrics=$METRICS_PORT
  start_sampler "$gw" "$RESULTS/replay.proc"
  start_stats_sampler "http://127.0.0.1:$gw_metrics/stats" "$RESULTS/replay.stats" 1
  sleep 1
  t_before=$EPOCHREALTIME
  bench replay-memory --port "$gw_port" --conns "$REPLAY_CONNS" --rate "$REPLAY_RATE" --size 64 \
    --connect-rate 10000 --warmup "$warmup" --duration "$duration" \
    --stats-url "http://127.0.0.1:$gw_metrics/stats"
  stop_stats_sampler
  stop_sampler
  stop_server "$gw"
  LOAD[replay]+=" -> $(loadavg)"
  t0=$(j replay-memory .measure.start_unix_seconds)
  t1=$(j replay-memory .measure.end_unix_seconds)
  RPM[rss_idle]=$(awk -v t="$t_before" '$1 <= t { r = $3 } END { print r + 0 }' "$RESULTS/replay.proc")
  read -r _ "RPM[rss0]" "RPM[rss1]" _ < <(proc_window "$RESULTS/replay.proc" "$t0" "$t1")
  local k
  for k in attached frames_in replay_memory replay_frame_bytes rss; do
    RPM[s_${k}0]=$(stats_at "$RESULTS/replay.stats" "$t0" ".$k")
    RPM[s_${k}1]=$(stats_at "$RESULTS/replay.stats" "$t1" ".$k")
  done
}

# Profile 8: --reactors 1, 2 and auto, closed loop, alternating within each round.
SCALING_CONFIGS="1 2 auto"
declare -A SCL
scaling_profile() {
  local warmup duration round r
  LOAD[scaling]=$(loadavg)
  warmup=$(dur 1000 500)
  duration=$(dur 5000 2000)
  declare -A pid port mport
  for r in $SCALING_CONFIGS; do
    start_server "scaling-gateway-$r" "$GATEWAY" --port 0 --metrics-port 0 --reactors "$r"
    pid[$r]=$SERVER_PID; port[$r]=$SERVER_PORT; mport[$r]=$METRICS_PORT
  done
  for round in $(seq "$SCALING_ROUNDS"); do
    for r in $SCALING_CONFIGS; do
      # Per-reactor loop utilisation from /stats twice a second (its 1 s rate).
      start_stats_sampler "http://127.0.0.1:${mport[$r]}/stats" "$RESULTS/scaling-$r-$round.stats" 0.5
      bench "scaling-$r-$round" --port "${port[$r]}" --conns 100 --window 16 --size 64 \
        --warmup "$warmup" --duration "$duration" --stats-url "http://127.0.0.1:${mport[$r]}/stats"
      stop_stats_sampler
    done
  done
  for r in $SCALING_CONFIGS; do stop_server "${pid[$r]}"; done
  LOAD[scaling]+=" -> $(loadavg)"
  # Medians over the rounds; utilisation: per reactor, the median of the samples
  # inside each round's measured window, then the median over the rounds
  # (SCL[r.util]: one percentage per reactor, e.g. "47 56").
  local f u
  for r in $SCALING_CONFIGS; do
    for f in .throughput.frames_per_second .latency_us.p99 .server.cpu_percent .client.cpu_percent \
      .server.buffer_allocations_measured; do
      SCL[$r$f]=$(median $(for round in $(seq "$SCALING_ROUNDS"); do j "scaling-$r-$round" "$f"; done))
    done
    u=$(for round in $(seq "$SCALING_ROUNDS"); do
      jq -cs --argjson t0 "$(j "scaling-$r-$round" .measure.start_unix_seconds)" \
        --argjson t1 "$(j "scaling-$r-$round" .measure.end_unix_seconds)" \
        '[.[] | select(.t >= $t0 + 1 and .t <= $t1) | .util] | if length == 0 then empty
         else transpose | map(sort | .[length / 2 | floor]) end' \
        "$RESULTS/scaling-$r-$round.stats" 2> /dev/null
    done | jq -rs 'if length == 0 then "n/a" else transpose | map(map(select(. != null)) | sort | .[length / 2 | floor] * 100 | round | tostring) | join(" ") end')
    SCL[$r.util]=${u:-n/a}
    SCL[$r.reactors]=$(jq -rs 'map(.util | length) | max // "n/a"' "$RESULTS/scaling-$r-1.stats" 2> /dev/null || echo n/a)
    # Balance in the first round: connections per reactor, and each reactor's
    # share of the frames in % (its 1 s rates summed over the measured window):
    # "CONNS...|PERCENTS...", e.g. "58 42|79 21".
    SCL[$r.balance]=$(jq -rs --argjson t0 "$(j "scaling-$r-1" .measure.start_unix_seconds)" \
      --argjson t1 "$(j "scaling-$r-1" .measure.end_unix_seconds)" '
      [.[] | select(.t >= $t0 + 1 and .t <= $t1)] as $w
      | if ($w | length) == 0 then "n/a" else
        ($w | map(.frames) | transpose | map(add)) as $f | ($f | add) as $sum
        | "\($w[-1].conns | map(tostring) | join(" "))|\($f | map(if $sum > 0 then . / $sum * 100 | round else 0 end | tostring) | join(" "))"
        end' "$RESULTS/scaling-$r-1.stats" 2> /dev/null || echo n/a)
  done
}

# Profile 9: non-reading flooders beside one probe client (bench/flood.py starts
# and stops its own gateway, samples its RSS and prints one JSON object).
flood_profile() {
  local n flood
  LOAD[flood]=$(loadavg)
  flood=$(awk -v s="$SCALE" 'BEGIN { v = 30 * s; if (v < 3) v = 3; print v }')
  for n in $FLOOD_COUNTS; do
    COMMANDS+=("python3 bench/flood.py --flooders $n --flood $flood --after 60 -- flux-gateway --reactors 1")
    log "flood-$n: $n flooders, $flood s of flood, 60 s after"
    (run_niced python3 "$ROOT/bench/flood.py" --flooders "$n" --flood "$flood" --after 60 \
      --log "$RESULTS/flood-$n.gateway.log" --samples "$RESULTS/flood-$n.rss" -- "$GATEWAY" --reactors 1) \
      > "$RESULTS/flood-$n.json" 2> "$RESULTS/flood-$n.progress" ||
      log "flood-$n: flood.py exited $? (gateway up: $(j "flood-$n" .gateway_up))"
  done
  LOAD[flood]+=" -> $(loadavg)"
}

# Profile 10: the four ratios to the speed of light (bench/speed.py).
speed_profile() {
  LOAD[speed]=$(loadavg)
  local seconds seed_seconds d
  d=$(dur 5000 2000)
  seconds=$((${d%ms} / 1000))
  d=$(dur 20000 5000)
  seed_seconds=$((${d%ms} / 1000))
  COMMANDS+=("python3 bench/speed.py --build-dir $BUILD_DIR --metrics-off-build-dir $NOMETRICS_DIR --rounds $ROUNDS --seconds $seconds --seed-conns $SPEED_SEED_CONNS --seed-seconds $seed_seconds")
  python3 "$ROOT/bench/speed.py" --build-dir "$BUILD_DIR" --metrics-off-build-dir "$NOMETRICS_DIR" \
    --rounds "$ROUNDS" --seconds "$seconds" --seed-conns "$SPEED_SEED_CONNS" \
    --seed-seconds "$seed_seconds" --json "$RESULTS/speed.json" \
    > "$RESULTS/speed.md" || log "speed: bench/speed.py failed"
  cat "$RESULTS/speed.md" >&2
  LOAD[speed]+=" -> $(loadavg)"
}
