#pragma once
// monotonic_ns(): the one clock every thread of the gateway reads.
//
// CLOCK_MONOTONIC through the vDSO (no system call): the reactor times its
// loop with it, stamps its heartbeat with it, and the metrics thread compares
// those stamps with its own readings (/healthz, uptime, rates), so both sides
// must read the same clock.
//
// Thread contract: any thread.

#include <time.h>

#include <cstdint>

namespace flux {

inline uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace flux
