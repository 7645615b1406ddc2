#pragma once

// Deadlines for the integration tests.
//
// Every wait in this suite (a reply, an EOF, a process exit) is bounded by an
// absolute deadline on the monotonic clock, never by a relative timeout that
// restarts inside a retry loop: a test that waits for ten frames with one
// deadline fails in bounded time even if every frame arrives just in time.

#include <algorithm>
#include <chrono>
#include <climits>

namespace flux::itest {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// How long a test waits for something the gateway should do at once (a
// reply, an accept, an EOF after an error). Generous so that a loaded CI
// machine or a sanitizer build does not turn into a flaky failure; a correct
// gateway answers in microseconds, so the bound costs nothing when tests pass.
inline constexpr std::chrono::seconds kPromptWait{5};

// The deadline `d` from now.
inline Deadline after(Clock::duration d) {
  return Clock::now() + d;
}

// Milliseconds until `deadline`, for poll(): 0 once it has passed, rounded up
// so that a poll never returns before the deadline and spins on a 0 timeout.
inline int poll_timeout_ms(Deadline deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

// Milliseconds elapsed since `start`, for assertions on timing.
inline long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

}  // namespace flux::itest
