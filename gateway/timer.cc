#include "gateway/timer.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace flux {

CommonTimeout::CommonTimeout(event_base* base, Millis duration) {
  if (duration.count() <= 0) return;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  const timeval* magic = event_base_init_common_timeout(base, &tv);
  if (!magic) {
    fprintf(stderr, "flux: event_base_init_common_timeout failed\n");
    std::abort();
  }
  magic_ = *magic;
  enabled_ = true;
}

Timer::Timer(event_base* base, event_callback_fn callback, void* arg)
    : event_(evtimer_new(base, callback, arg)) {
  if (!event_) {
    fprintf(stderr, "flux: evtimer_new failed\n");
    std::abort();
  }
}

void Timer::arm(const CommonTimeout& timeout) noexcept {
  if (timeout.enabled())
    evtimer_add(event_.get(), timeout.get());
  else
    evtimer_del(event_.get());
}

void Timer::arm_after(std::chrono::nanoseconds delay) noexcept {
  const auto us =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  evtimer_add(event_.get(), &tv);
}

void Timer::cancel() noexcept {
  evtimer_del(event_.get());
}

bool Timer::pending() const noexcept {
  return evtimer_pending(event_.get(), nullptr) != 0;
}

}  // namespace flux
