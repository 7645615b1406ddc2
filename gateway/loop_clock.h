#pragma once
// LoopClock: splits each turn of the event loop into poll wait and busy
// time, at the cost of two vDSO clock reads per iteration.
//
//   before_poll()          epoll_wait            callbacks ...          before_poll()
//        |<------ poll wait ------>|<---------------- busy ---------------->|
//   t_start                   t_return (first callback)                t_next
//
// libevent 2.1 has no prepare/check hooks. Its own cached time (taken right
// after epoll_wait) would be the exact poll-return instant, but it comes
// from CLOCK_MONOTONIC_COARSE (a few ms of resolution) shifted to wall time,
// which cannot time iterations of a few microseconds: measured, it reported
// 6% busy on a loop using 94% of a core. So the first of our callbacks in
// an iteration reads CLOCK_MONOTONIC itself (libevent's timeout processing
// before it is sub-microsecond), and before_poll() reads it once to close
// the previous iteration. Both readings are one clock: busy + poll = wall.
//
// It also keeps the reactor's activity word (metrics/loop_activity.h):
// every callback says what it is doing as it enters (one relaxed store),
// before_poll() says `poll`, and the two instants above are published for
// the stall watchdog (one store each per iteration, of values read anyway).
//
// Thread contract: loop thread only.

#include <event2/event.h>

#include <cstdint>

#include "common/monotonic_clock.h"
#include "metrics/reactor_metrics.h"

namespace flux {

class LoopClock {
 public:
  explicit LoopClock(ReactorMetrics& metrics) : metrics_(metrics) {}

  // Call right before each event_base_loop(EVLOOP_ONCE).
  void before_poll() noexcept {
    if constexpr (kMetricsEnabled) close_iteration();
  }
  // Call first thing in every callback, saying what it does (and for which
  // connection); only the first per iteration reads the clock.
  void on_callback(Activity activity, uint64_t connection_id = 0) noexcept {
    if constexpr (kMetricsEnabled) {
      metrics_.activity.set(activity, connection_id);
      if (!captured_) capture_poll_return();
    }
  }
  // Work between iterations that is not a callback (reaping).
  void doing(Activity activity) noexcept {
    if constexpr (kMetricsEnabled) metrics_.activity.set(activity);
  }

 private:
  void close_iteration() noexcept;
  void capture_poll_return() noexcept {
    poll_returned_ns_ = monotonic_ns();
    captured_ = true;
    metrics_.activity.busy_since_ns.store(poll_returned_ns_, std::memory_order_release);
  }

  ReactorMetrics& metrics_;
  uint64_t poll_started_ns_ = 0;
  uint64_t poll_returned_ns_ = 0;
  bool captured_ = true;  // nothing to capture before the first poll
  bool started_ = false;
};

}  // namespace flux
