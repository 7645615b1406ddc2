#pragma once
// Time in fluxbench: one monotonic nanosecond clock for every latency, pace
// and deadline; the wall clock only to stamp reports.
//
// Thread contract: free functions, any thread.

#include <time.h>

#include <cstdint>

namespace flux::bench {

inline constexpr uint64_t kNsPerUs = 1'000;
inline constexpr uint64_t kNsPerMs = 1'000'000;
inline constexpr uint64_t kNsPerSec = 1'000'000'000;

// CLOCK_MONOTONIC in nanoseconds (a vDSO call, ~20 ns).
inline uint64_t mono_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

// Seconds since the Unix epoch, with sub-second precision; for reports only.
inline double unix_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

inline double ns_to_seconds(uint64_t ns) noexcept {
  return static_cast<double>(ns) / 1e9;
}
inline double ns_to_us(uint64_t ns) noexcept {
  return static_cast<double>(ns) / 1e3;
}

}  // namespace flux::bench
