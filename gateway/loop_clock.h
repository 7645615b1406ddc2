#pragma once
// LoopClock: splits each turn of the event loop into poll wait and busy
// time, at the cost of one clock read per iteration.
//
//   before_poll()          epoll_wait            callbacks ...          before_poll()
//        |<------ poll wait ------>|<---------------- busy ---------------->|
//   t_start                   t_return (libevent's cached time)        t_next
//
// libevent 2.1 has no prepare/check hooks, but right after epoll_wait
// returns it caches the time (update_time_cache) for all callbacks of that
// iteration. The first of our callbacks to run reads that cache: it is the
// exact poll-return instant, with no extra clock read. before_poll() reads
// the clock once (the cache is empty between iterations) and closes the
// previous iteration. Both readings are libevent's gettimeofday view, so
// they compare; a wall-clock step is clamped to zero.
//
// Thread contract: loop thread only.

#include <event2/event.h>
#include <time.h>

#include <cstdint>

#include "metrics/reactor_metrics.h"

namespace flux {

inline uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

class LoopClock {
 public:
  LoopClock(event_base* base, ReactorMetrics& metrics) : base_(base), metrics_(metrics) {}

  // Call right before each event_base_loop(EVLOOP_ONCE).
  void before_poll() noexcept {
    if constexpr (kMetricsEnabled) close_iteration();
  }
  // Call first thing in every callback; only the first per iteration reads.
  void on_callback() noexcept {
    if (kMetricsEnabled && !captured_) capture_poll_return();
  }

 private:
  void close_iteration() noexcept;
  uint64_t cached_us() const noexcept;
  void capture_poll_return() noexcept;

  event_base* base_;
  ReactorMetrics& metrics_;
  uint64_t poll_started_us_ = 0;
  uint64_t poll_returned_us_ = 0;
  bool captured_ = true;  // nothing to capture before the first poll
  bool started_ = false;
};

}  // namespace flux
