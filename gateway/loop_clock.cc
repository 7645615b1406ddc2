#include "gateway/loop_clock.h"

namespace flux {

uint64_t LoopClock::cached_us() const noexcept {
  timeval tv{};
  event_base_gettimeofday_cached(base_, &tv);
  return static_cast<uint64_t>(tv.tv_sec) * 1'000'000u + static_cast<uint64_t>(tv.tv_usec);
}

void LoopClock::capture_poll_return() noexcept {
  poll_returned_us_ = cached_us();
  captured_ = true;
}

void LoopClock::close_iteration() noexcept {
  const uint64_t now_us = cached_us();  // the cache is empty here: a fresh reading
  if (started_) {
    // An iteration that ran none of our callbacks was all waiting.
    uint64_t returned = captured_ ? poll_returned_us_ : now_us;
    if (returned < poll_started_us_) returned = poll_started_us_;  // wall clock stepped back
    const uint64_t poll_ns = (returned - poll_started_us_) * 1000;
    const uint64_t busy_ns = now_us > returned ? (now_us - returned) * 1000 : 0;
    metrics_.poll_wait.record(poll_ns);
    metrics_.loop_busy.record(busy_ns);
    metrics_.loop.poll_ns_total.add(poll_ns);
    metrics_.loop.busy_ns_total.add(busy_ns);
    metrics_.loop.iterations_total.add();
  }
  started_ = true;
  poll_started_us_ = now_us;
  captured_ = false;
}

}  // namespace flux
