#pragma once
// LatencyHistogram: a log-linear histogram of durations, HdrHistogram style,
// with one writer thread and any number of readers.
//
// Values are nanoseconds. Below 32 ns every value has its own bucket; above,
// each power of two [2^e, 2^(e+1)) is cut into 32 equal sub-buckets, so a
// bucket is never wider than 1/32 of its lower bound (< 3.2% relative error,
// < 1.6% when reporting the bucket midpoint) from 1 ns to 64 s. Larger
// values land in the last bucket; `max` stays exact.
//
//   index:  0 .. 31  | 32 .. 63           | 64 .. 95           | ... | 1023
//   value:  0 .. 31  | [32,64) step 1     | [64,128) step 2    | ... | ~64 s
//
// Prometheus wants a handful of fixed `le` bounds, and deriving those from
// the fine buckets would misplace the values of any bucket straddling a
// bound. So each observation also increments one exact coarse bucket
// (kPrometheusBounds): two relaxed stores more, and the exposition never lies.
//
// Thread contract: record() from the single writer thread only; snapshot()
// from any thread. A snapshot may miss the very latest observation or see a
// bucket one behind its count; it never sees a torn value.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/log_linear_histogram.h"

#ifndef FLUX_METRICS_ENABLED
#define FLUX_METRICS_ENABLED 1
#endif

namespace flux {

// The bucket maths, shared with fluxbench (common/log_linear_histogram.h).
using HistogramLayout = LogLinearLayout<5, 36>;

inline constexpr int kHistogramSubBits = HistogramLayout::kSubBits;
inline constexpr size_t kHistogramSubBuckets = HistogramLayout::kSubBuckets;  // 32
// 1024: up to 2^36 ns ~ 68.7 s
inline constexpr size_t kHistogramBuckets = HistogramLayout::kBuckets;
static_assert(kHistogramBuckets == 1024);

// Upper bounds of the Prometheus buckets, in nanoseconds (+Inf is implied).
inline constexpr std::array<uint64_t, 24> kPrometheusBoundsNs = {
    1'000,         2'500,         5'000,         10'000,         25'000,         50'000,
    100'000,       250'000,       500'000,       1'000'000,      2'500'000,      5'000'000,
    10'000'000,    25'000'000,    50'000'000,    100'000'000,    250'000'000,    500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000, 30'000'000'000, 60'000'000'000};
inline constexpr size_t kPrometheusBuckets = kPrometheusBoundsNs.size() + 1;  // + the +Inf bucket

constexpr size_t histogram_index(uint64_t ns) noexcept {
  return HistogramLayout::index(ns);
}
// Smallest value that maps to `index`.
constexpr uint64_t histogram_lower_bound(size_t index) noexcept {
  return HistogramLayout::lowest(index);
}
// One past the largest value that maps to `index`.
constexpr uint64_t histogram_upper_bound(size_t index) noexcept {
  return HistogramLayout::lowest(index + 1);
}

// A point-in-time copy, plain integers: merge, subtract, ask for percentiles.
struct HistogramSnapshot {
  std::array<uint64_t, kHistogramBuckets> buckets{};
  std::array<uint64_t, kPrometheusBuckets> prometheus{};  // not cumulative
  uint64_t sum_ns = 0;
  uint64_t max_ns = 0;

  uint64_t count() const noexcept;
  // q in [0, 1]; the midpoint of the bucket holding the q-th value, in ns;
  // 0 for an empty histogram.
  double percentile_ns(double q) const noexcept;
  void merge(const HistogramSnapshot& other) noexcept;
  // The observations made between `earlier` and this snapshot (max is kept).
  HistogramSnapshot since(const HistogramSnapshot& earlier) const noexcept;
};

class alignas(64) LatencyHistogram {
 public:
  // Single writer. Relaxed load+store: no read-modify-write needed.
  void record(uint64_t ns) noexcept { record_many(ns, 1); }
  void record_many(uint64_t ns, uint64_t times) noexcept {
    if (!FLUX_METRICS_ENABLED || times == 0) return;
    buckets_.record(ns, times);
    relaxed_add(prometheus_[prometheus_index(ns)], times);
  }

  HistogramSnapshot snapshot() const noexcept;

  static size_t prometheus_index(uint64_t ns) noexcept {
    size_t i = 0;  // linear: most latencies sit in the first few bounds
    while (i < kPrometheusBoundsNs.size() && ns > kPrometheusBoundsNs[i]) ++i;
    return i;
  }

 private:
  RelaxedBuckets<HistogramLayout> buckets_;  // the fine buckets, sum and max
  std::array<std::atomic<uint64_t>, kPrometheusBuckets> prometheus_{};
};

}  // namespace flux
