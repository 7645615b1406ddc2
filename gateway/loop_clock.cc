#include "gateway/loop_clock.h"

namespace flux {

void LoopClock::close_iteration() noexcept {
  const uint64_t now = monotonic_ns();
  if (started_) {
    // An iteration that ran none of our callbacks was all waiting.
    const uint64_t returned = captured_ ? poll_returned_ns_ : now;
    const uint64_t poll_ns = returned - poll_started_ns_;
    const uint64_t busy_ns = now - returned;
    metrics_.poll_wait.record(poll_ns);
    metrics_.loop_busy.record(busy_ns);
    metrics_.loop.poll_ns_total.add(poll_ns);
    metrics_.loop.busy_ns_total.add(busy_ns);
    metrics_.loop.iterations_total.add();
    // The watchdog pairs the end of this iteration with its start.
    if (captured_) metrics_.activity.closed_busy_ns.store(returned, std::memory_order_relaxed);
  }
  metrics_.activity.set(Activity::kPoll);
  metrics_.activity.poll_since_ns.store(now, std::memory_order_release);
  started_ = true;
  poll_started_ns_ = now;
  captured_ = false;
}

}  // namespace flux
