#include "bench/fluxbench/runner.h"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/process_self.h"

namespace flux::bench {
namespace {

constexpr uint64_t kTick = kNsPerSec;
constexpr uint64_t kPollSlice = 20 * kNsPerMs;   // how often the main thread looks around
constexpr uint64_t kStartDelay = 20 * kNsPerMs;  // lets every worker see start_ns in time
constexpr int kStatsTimeoutMs = 400;

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true, std::memory_order_relaxed);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

Target make_target(const Options& o) {
  return Target{o.host_addr, o.port, o.host_is_loopback, o.src_ips};
}

}  // namespace

Runner::Runner(const Options& options) : options_(options), progress_(options.progress) {
  if (!options.stats_url.empty()) poller_.emplace(*parse_http_url(options.stats_url));
}

Runner::~Runner() {
  control_.stop.store(true);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

RunResult Runner::run() {
  install_signal_handlers();
  open_file_limit_ = raise_open_file_limit();
  if (open_file_limit_ < options_.conns + 64ull) {
    std::fprintf(stderr,
                 "fluxbench: warning: open-file limit %llu is below --conns %u: expect EMFILE "
                 "failures\n",
                 static_cast<unsigned long long>(open_file_limit_), options_.conns);
  }
  t0_ns_ = mono_ns();
  next_tick_ns_ = t0_ns_ + kTick;
  last_tick_ns_ = t0_ns_;
  control_.connect_deadline_ns = t0_ns_ + options_.connect_budget_ns();
  spawn_workers();
  connect_phase();
  traffic_phase();
  for (auto& t : threads_) t.join();
  threads_.clear();
  progress_.finish();
  return collect();
}

void Runner::spawn_workers() {
  const Target target = make_target(options_);
  const uint32_t n = options_.threads;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t first = static_cast<uint32_t>(uint64_t{options_.conns} * i / n);
    const uint32_t last = static_cast<uint32_t>(uint64_t{options_.conns} * (i + 1) / n);
    workers_.push_back(std::make_unique<Worker>(options_, target, control_, first, last - first));
  }
  for (auto& w : workers_) threads_.emplace_back([worker = w.get()] { worker->run(); });
}

// Until every connection is ready or failed, or the budget is spent.
void Runner::connect_phase() {
  for (;;) {
    const uint64_t now = mono_ns();
    if (interrupted()) return;
    const Totals t = totals();
    if (t.ready + t.connect_failed + t.handshake_failed >= options_.conns ||
        now >= control_.connect_deadline_ns) {
      break;
    }
    if (now >= next_tick_ns_) tick(now, "connect");
    sleep_until(std::min(next_tick_ns_, now + kPollSlice));
  }
  control_.ready_total.store(totals().ready, std::memory_order_relaxed);
  const uint64_t start = mono_ns() + kStartDelay;
  timeline_ = Timeline::from(start, options_.warmup_ns, options_.duration_ns, options_.grace_ns);
  control_.start_ns.store(start, std::memory_order_release);
  started_ = true;
  // From here on, ticks fall on whole seconds of traffic, so that a measured
  // window of D seconds (after a warm-up of whole seconds) holds D ticks.
  next_tick_ns_ = start + kTick;
}

void Runner::traffic_phase() {
  bool at_warm_end = false;
  bool at_end = false;
  while (!all_done()) {
    uint64_t now = mono_ns();
    if (interrupted()) {
      sleep_until(now + kPollSlice);
      continue;
    }
    if (started_ && !at_warm_end && now >= timeline_.warm_end_ns) {
      at_warm_end = true;
      cpu_at_warm_end_ = self_cpu_seconds();
      unix_at_warm_end_ = unix_seconds();
      if (poller_) poller_->poll_window_start(kStatsTimeoutMs);
    }
    if (started_ && !at_end && now >= timeline_.end_ns) {
      at_end = true;
      cpu_at_end_ = self_cpu_seconds();
      unix_at_end_ = unix_seconds();
      rss_at_end_ = self_rss_bytes();  // every connection still open
      if (poller_) poller_->poll_window_end(kStatsTimeoutMs);
    }
    if (at_end && !control_.say_bye.load(std::memory_order_relaxed) && drained(now)) {
      control_.say_bye.store(true, std::memory_order_relaxed);
    }
    now = mono_ns();
    if (now >= next_tick_ns_) tick(now, phase_of((last_tick_ns_ + now) / 2));
    uint64_t wake = std::min(next_tick_ns_, now + kPollSlice);
    if (!at_warm_end) wake = std::min(wake, timeline_.warm_end_ns);
    if (!at_end) wake = std::min(wake, timeline_.end_ns);
    sleep_until(wake);
  }
}

// The phase at `t`, for the progress line (which describes the second
// that just ended: callers pass its midpoint).
const char* Runner::phase_of(uint64_t t) const {
  if (!started_ || t < timeline_.start_ns) return "connect";
  if (t < timeline_.warm_end_ns) return "warmup";
  if (t < timeline_.end_ns) return "measure";
  return "drain";
}

// Once a second: the server's /stats, then one progress line.
void Runner::tick(uint64_t now, const char* phase) {
  while (next_tick_ns_ <= now) next_tick_ns_ += kTick;
  const ServerSample* server = nullptr;
  if (poller_ && poller_->poll(kStatsTimeoutMs)) server = poller_->latest();
  const Totals t = totals();
  const Histogram live = merged(&Worker::live);
  const double interval = std::max(1e-3, ns_to_seconds(now - last_tick_ns_));
  ProgressState st;
  st.phase = phase;
  st.elapsed_s = ns_to_seconds(now - t0_ns_);
  st.planned_s =
      started_
          ? ns_to_seconds(timeline_.end_ns - t0_ns_)
          : ns_to_seconds(options_.connect_budget_ns() + options_.warmup_ns + options_.duration_ns);
  st.ready = t.ready;
  st.conns = options_.conns;
  st.rate = static_cast<double>(t.received - last_received_) / interval;
  st.p99_ns = live.since(last_live_).percentile_ns(0.99);
  const Histogram send_lag = merged(&Worker::send_lag);
  if (started_ && last_tick_ns_ >= timeline_.warm_end_ns && now <= timeline_.end_ns + kPollSlice) {
    seconds_.push_back(
        {st.elapsed_s, st.rate, st.p99_ns, send_lag.since(last_send_lag_).percentile_ns(0.99)});
  }
  st.errors = t.errors();
  st.failed = t.connect_failed + t.handshake_failed;
  st.server = server;
  progress_.show(st);
  last_tick_ns_ = now;
  last_received_ = t.received;
  last_live_ = live;
  last_send_lag_ = send_lag;
}

void Runner::sleep_until(uint64_t deadline_ns) const {
  const timespec ts{static_cast<time_t>(deadline_ns / kNsPerSec),
                    static_cast<long>(deadline_ns % kNsPerSec)};
  ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

bool Runner::interrupted() {
  if (!g_interrupted.load(std::memory_order_relaxed)) return false;
  control_.stop.store(true, std::memory_order_relaxed);
  return true;
}

// Nothing in flight anywhere (every frame sent was echoed, mismatched or
// lost), or half the grace is gone and the rest is for the goodbyes.
bool Runner::drained(uint64_t now) const {
  const Totals t = totals();
  return t.sent == t.received + t.mismatched + t.lost ||
         now >= timeline_.end_ns + options_.grace_ns / 2;
}

bool Runner::all_done() const {
  return std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->done(); });
}

Totals Runner::totals() const {
  Totals t;
  for (const auto& w : workers_) {
    const WorkerCounters& c = w->counters();
    t.ready += c.ready.get();
    t.connect_failed += c.connect_failed.get();
    t.handshake_failed += c.handshake_failed.get();
    t.closed_by_server += c.closed_by_server.get();
    t.closed_clean += c.closed_clean.get();
    t.sent += c.sent.get();
    t.received += c.received.get();
    t.received_measured += c.received_measured.get();
    t.bytes_measured += c.bytes_measured.get();
    t.mismatched += c.mismatched.get();
    t.lost += c.lost.get();
    t.unsent += c.unsent.get();
    t.server_errors += c.server_errors.get();
    t.drops += c.drops.get();
    t.resumes += c.resumes.get();
    t.resume_failures += c.resume_failures.get();
    t.replayed += c.replayed.get();
    t.resent += c.resent.get();
    t.server_closes += c.server_closes.get();
    t.resume_retries += c.resume_retries.get();
  }
  return t;
}

Histogram Runner::merged(const LatencyRecorder& (Worker::*which)() const noexcept) const {
  Histogram h;
  for (const auto& w : workers_) h.merge(((*w).*which)().snapshot());
  return h;
}

RunResult Runner::collect() {
  RunResult r;
  r.options = options_;
  r.started = started_;
  r.interrupted = g_interrupted.load();
  r.totals = totals();
  r.latency = merged(&Worker::latency);
  r.send_lag = merged(&Worker::send_lag);
  r.resume_latency = merged(&Worker::resume_latency);
  r.seconds = seconds_;
  for (const auto& w : workers_) {
    for (const auto& [why, n] : w->failures()) r.failures[why] += n;
  }
  r.measure_start_unix = unix_at_warm_end_;
  r.measure_end_unix = unix_at_end_;
  r.measured_seconds = ns_to_seconds(options_.duration_ns);
  if (unix_at_end_ > unix_at_warm_end_ && unix_at_warm_end_ > 0) {
    r.client_cpu_percent = (cpu_at_end_ - cpu_at_warm_end_) / r.measured_seconds * 100.0;
  }
  r.client_rss_bytes = rss_at_end_ != 0 ? rss_at_end_ : self_rss_bytes();
  r.open_file_limit = open_file_limit_;
  if (poller_) r.server = poller_->summarize();
  return r;
}

}  // namespace flux::bench
