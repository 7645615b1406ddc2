#include "metrics/stall_watchdog.h"

#include <sys/time.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/monotonic_clock.h"
#include "metrics/thread_names.h"

namespace flux {
namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as monotonic_ns()

constexpr std::chrono::nanoseconds kMinLook{250'000};
constexpr std::chrono::nanoseconds kMaxLook{10'000'000};

double unix_now() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
}

Clock::time_point at(uint64_t monotonic) {
  return Clock::time_point(std::chrono::nanoseconds(monotonic));
}

}  // namespace

struct StallWatchdog::Shared {
  mutable std::mutex mutex;
  std::deque<StallRecord> records;  // oldest first
  size_t keep = 64;
  bool stopped = false;
  std::function<void(const StallRecord&)> on_stall;

  StallRecord* find(uint64_t seq) {
    for (StallRecord& r : records)
      if (r.seq == seq) return &r;
    return nullptr;
  }
  // Under the lock: the record to report, if it is ended, its peer known
  // and it was not reported yet (marked reported).
  bool take_report(StallRecord& r, StallRecord& out) {
    if (r.ongoing || !r.peer_known || r.reported) return false;
    r.reported = true;
    out = r;
    return true;
  }
  void report(const StallRecord& r) const {
    if (on_stall) on_stall(r);
  }
};

StallWatchdog::StallWatchdog(StallWatchdogConfig config, std::vector<WatchedReactor> reactors)
    : config_(std::move(config)),
      reactors_(std::move(reactors)),
      watches_(reactors_.size()),
      shared_(std::make_shared<Shared>()) {
  shared_->keep = std::max<size_t>(config_.keep, 1);
  shared_->on_stall = config_.on_stall;
}

StallWatchdog::~StallWatchdog() {
  stop();
}

std::chrono::nanoseconds StallWatchdog::look_interval(
    std::chrono::microseconds threshold) noexcept {
  const std::chrono::nanoseconds quarter = std::chrono::nanoseconds(threshold) / 4;
  return std::clamp(quarter, kMinLook, kMaxLook);
}

void StallWatchdog::start() {
  if (config_.threshold.count() <= 0 && config_.profile_hz == 0) return;
  thread_ = std::thread([this] {
    name_this_thread("flux-stalls");
    run();
  });
}

void StallWatchdog::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Stalls that ended but whose peer never came (the reactor stopped
  // first) are reported without it; answers that come later are ignored.
  std::vector<StallRecord> late;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopped = true;
    for (StallRecord& r : shared_->records) {
      r.peer_known = true;
      StallRecord out;
      if (shared_->take_report(r, out)) late.push_back(std::move(out));
    }
  }
  for (const StallRecord& r : late) shared_->report(r);
}

void StallWatchdog::run() {
  const bool stalls = config_.threshold.count() > 0;
  const bool profile = config_.profile_hz > 0;
  const std::chrono::nanoseconds look_every = look_interval(config_.threshold);
  const std::chrono::nanoseconds sample_every =
      profile ? std::chrono::nanoseconds(1'000'000'000 / config_.profile_hz)
              : std::chrono::nanoseconds::max();
  const uint64_t start = monotonic_ns();
  uint64_t next_look = start + uint64_t(look_every.count());
  uint64_t next_sample = start + (profile ? uint64_t(sample_every.count()) : 0);
  std::unique_lock lock(wake_mutex_);
  while (!stopping_) {
    const uint64_t due = stalls && profile ? std::min(next_look, next_sample)
                         : stalls          ? next_look
                                           : next_sample;
    if (wake_.wait_until(lock, at(due), [this] { return stopping_; })) break;
    lock.unlock();
    const uint64_t now = monotonic_ns();
    if (stalls && now >= next_look) {
      for (size_t r = 0; r < reactors_.size(); ++r) look(r);
      // Fixed steps; after a late wake-up, carry on from now (no catch-up burst).
      next_look += uint64_t(look_every.count());
      if (next_look <= now) next_look = now + uint64_t(look_every.count());
    }
    if (profile && now >= next_sample) {
      sample();
      next_sample += uint64_t(sample_every.count());
      if (next_sample <= now) next_sample = now + uint64_t(sample_every.count());
    }
    lock.lock();
  }
}

void StallWatchdog::sample() {
  for (const WatchedReactor& r : reactors_) {
    const uint64_t word = r.metrics->activity.word.load(std::memory_order_relaxed);
    r.cells->activity_samples_total[static_cast<size_t>(word_activity(word))].add();
  }
}

// The loop is busy while its current iteration started (busy_since) after
// it last entered epoll_wait (poll_since). Acquire loads: a busy_since seen
// comes with the poll_since stored before it.
void StallWatchdog::look(size_t r) {
  const LoopActivity& a = reactors_[r].metrics->activity;
  const uint64_t busy_since = a.busy_since_ns.load(std::memory_order_acquire);
  const uint64_t poll_since = a.poll_since_ns.load(std::memory_order_acquire);
  const uint64_t closed = a.closed_busy_ns.load(std::memory_order_relaxed);
  const uint64_t word = a.word.load(std::memory_order_relaxed);
  const uint64_t now = monotonic_ns();
  const bool busy = busy_since > poll_since;
  Watch& w = watches_[r];
  if (w.in_stall) {
    if (busy && busy_since == w.busy_since) {
      w.seen_busy_until = now;
      std::lock_guard lock(shared_->mutex);
      if (StallRecord* rec = shared_->find(w.seq))
        rec->duration_seconds = double(now - w.busy_since) / 1e9;
      return;
    }
    // Over. Exact when the iteration closed last is the stalled one: then
    // poll_since (read before `closed`) is the instant it ended.
    const bool exact = poll_since > w.busy_since && closed == w.busy_since;
    end_stall(r, exact ? poll_since : w.seen_busy_until);
  }
  const uint64_t threshold_ns = uint64_t(config_.threshold.count()) * 1000u;
  if (busy && now > busy_since && now - busy_since > threshold_ns && busy_since != w.last_stalled)
    begin_stall(r, busy_since, word, now);
}

void StallWatchdog::begin_stall(size_t r, uint64_t busy_since, uint64_t word, uint64_t now) {
  const WatchedReactor& reactor = reactors_[r];
  StallRecord rec;
  rec.seq = ++next_seq_;
  rec.reactor_index = r;
  rec.reactor = reactor.label;
  rec.start_monotonic_ns = busy_since;
  rec.start_unix_seconds = unix_now() - double(now - busy_since) / 1e9;
  rec.duration_seconds = double(now - busy_since) / 1e9;
  rec.activity = word_activity(word);
  if (names_connection(rec.activity)) rec.connection_id = word_connection(word);
  rec.peer_known = rec.connection_id == 0 || !reactor.describe_connection;
  Watch& w = watches_[r];
  w = {true, busy_since, now, busy_since, rec.seq};
  reactor.cells->stalls_total[static_cast<size_t>(rec.activity)].add();
  {
    std::lock_guard lock(shared_->mutex);
    shared_->records.push_back(rec);
    while (shared_->records.size() > shared_->keep) shared_->records.pop_front();
  }
  if (rec.peer_known) return;
  // Answered on the reactor's thread once it turns again, i.e. once the
  // stall is over: by then the connection may be gone ("" then).
  reactor.describe_connection(rec.connection_id,
                              [shared = shared_, seq = rec.seq](std::string peer) {
                                StallRecord out;
                                bool report = false;
                                {
                                  std::lock_guard lock(shared->mutex);
                                  if (shared->stopped) return;
                                  StallRecord* found = shared->find(seq);
                                  if (!found) return;
                                  found->peer = std::move(peer);
                                  found->peer_known = true;
                                  report = shared->take_report(*found, out);
                                }
                                if (report) shared->report(out);
                              });
}

void StallWatchdog::end_stall(size_t r, uint64_t end_ns) {
  Watch& w = watches_[r];
  w.in_stall = false;
  const uint64_t duration = end_ns > w.busy_since ? end_ns - w.busy_since : 0;
  reactors_[r].cells->stall_duration.record(duration);
  StallRecord out;
  bool report = false;
  {
    std::lock_guard lock(shared_->mutex);
    StallRecord* rec = shared_->find(w.seq);
    if (!rec) return;
    rec->ongoing = false;
    rec->duration_seconds = double(duration) / 1e9;
    report = shared_->take_report(*rec, out);
  }
  if (report) shared_->report(out);
}

std::vector<StallRecord> StallWatchdog::recent() const {
  std::lock_guard lock(shared_->mutex);
  return {shared_->records.rbegin(), shared_->records.rend()};
}

std::string StallWatchdog::json(bool pretty) const {
  nlohmann::json stalls = nlohmann::json::array();
  for (const StallRecord& r : recent()) {
    nlohmann::json row = {{"reactor", r.reactor},
                          {"start_unix_seconds", r.start_unix_seconds},
                          {"duration_seconds", r.duration_seconds},
                          {"activity", to_string(r.activity)},
                          {"ongoing", r.ongoing}};
    row["connection"] = r.connection_id != 0 ? nlohmann::json(r.connection_id) : nlohmann::json();
    row["peer"] = r.connection_id != 0 ? nlohmann::json(r.peer) : nlohmann::json();
    stalls.push_back(std::move(row));
  }
  nlohmann::json out = {{"threshold_seconds", threshold_seconds()},
                        {"profile_hz", config_.profile_hz},
                        {"stalls", std::move(stalls)}};
  return out.dump(pretty ? 2 : -1);
}

}  // namespace flux
