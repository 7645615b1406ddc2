#include "bench/fluxbench/connection.h"

#include <cmath>

namespace flux::bench {

const char* to_string(ConnState state) noexcept {
  switch (state) {
    case ConnState::kIdle:
      return "idle";
    case ConnState::kConnecting:
      return "connecting";
    case ConnState::kHandshaking:
      return "handshaking";
    case ConnState::kReady:
      return "ready";
    case ConnState::kByeSent:
      return "bye-sent";
    case ConnState::kDone:
      return "done";
    case ConnState::kReconnecting:
      return "reconnecting";
    case ConnState::kResuming:
      return "resuming";
  }
  return "?";
}

uint64_t Connection::frames_due_before(uint64_t end_ns) const noexcept {
  if (period_ns <= 0 || sched_base_ns >= end_ns) return 0;
  // Largest k with intended_ns(k) < end_ns; then nudge for rounding.
  auto k =
      static_cast<uint64_t>(std::ceil(static_cast<double>(end_ns - sched_base_ns) / period_ns));
  while (k > 0 && intended_ns(k) >= end_ns) --k;
  while (intended_ns(k + 1) < end_ns) ++k;
  return k;
}

}  // namespace flux::bench
