#pragma once
// Timers for per-connection timeouts, O(1) at any connection count.
//
// libevent keeps ordinary timers in a min-heap (O(log n) per add). A
// "common timeout" (event_base_init_common_timeout) is a FIFO queue for one
// fixed duration: every timer on it expires in the order it was armed, so
// adding, re-arming and cancelling are O(1) list operations. The gateway has
// three such durations (handshake, idle, linger); each gets a CommonTimeout.
//
// Thread contract: loop thread only.

#include <event2/event.h>
#include <sys/time.h>

#include <chrono>

#include "gateway/libevent_ptr.h"
#include "gateway/options.h"

namespace flux {

class CommonTimeout {
 public:
  CommonTimeout() = default;
  // duration 0 means "never": arming such a timeout does nothing.
  CommonTimeout(event_base* base, Millis duration);

  bool enabled() const noexcept { return enabled_; }
  const timeval* get() const noexcept { return &magic_; }

 private:
  timeval magic_{};  // libevent's encoded queue handle, not a real duration
  bool enabled_ = false;
};

// A one-shot timer event owned by one object; re-arming replaces the
// previous deadline.
class Timer {
 public:
  Timer(event_base* base, event_callback_fn callback, void* arg);

  void arm(const CommonTimeout& timeout) noexcept;
  // An ordinary (heap) deadline, for the rare timer that cannot use a
  // common timeout: `delay` <= 0 fires on the next loop turn.
  void arm_after(std::chrono::nanoseconds delay) noexcept;
  void cancel() noexcept;
  bool pending() const noexcept;

 private:
  EventPtr event_;
};

}  // namespace flux
