#pragma once
// Latency histograms, HdrHistogram style: log-linear buckets of nanoseconds.
//
// Below 128 ns every value has its own bucket. Above, each power of two
// [2^e, 2^(e+1)) is cut into 128 equal sub-buckets, so a bucket is never
// wider than 1/128 of its lowest value: any reported value is within 0.8%
// of the true one, from 128 ns to 2^40 ns (~18 min; larger values share the
// last bucket, and `max` stays exact).
//
//   index:  0 .. 127 | 128 .. 255        | 256 .. 383        | ... | 4351
//   value:  0 .. 127 | [128,256) step 1  | [256,512) step 2  | ... | ~2^40
//
// Two types:
//   Histogram        a plain value: record, merge, subtract, percentiles.
//   LatencyRecorder  the same buckets as relaxed atomics, written by one
//                    thread (its worker) and snapshotted by any other (the
//                    progress line) without locks.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/log_linear_histogram.h"

namespace flux::bench {

// The bucket maths, shared with the gateway's metrics (common/log_linear_histogram.h).
using LatencyLayout = LogLinearLayout<7, 40>;

inline constexpr unsigned kSubBucketBits = LatencyLayout::kSubBits;
inline constexpr uint64_t kSubBuckets = LatencyLayout::kSubBuckets;  // 128
inline constexpr unsigned kMaxExponent = 40;
inline constexpr size_t kBucketCount = LatencyLayout::kBuckets;  // 4352
static_assert(kBucketCount == kSubBuckets * (kMaxExponent - kSubBucketBits + 1));

constexpr size_t bucket_index(uint64_t ns) noexcept {
  return LatencyLayout::index(ns);
}
// The smallest value that maps to `index`.
constexpr uint64_t bucket_lowest(size_t index) noexcept {
  return LatencyLayout::lowest(index);
}
// The largest value that maps to `index` (HdrHistogram's "highest equivalent").
constexpr uint64_t bucket_highest(size_t index) noexcept {
  return LatencyLayout::highest(index);
}

class Histogram {
 public:
  Histogram() : buckets_(kBucketCount, 0) {}

  void record(uint64_t ns, uint64_t times = 1) noexcept;
  void merge(const Histogram& other) noexcept;
  // What was recorded after `earlier` (a previous copy of this histogram);
  // max is the overall max, so percentiles of the difference are capped by it.
  Histogram since(const Histogram& earlier) const;

  uint64_t count() const noexcept { return count_; }
  uint64_t max_ns() const noexcept { return max_ns_; }
  double mean_ns() const noexcept;
  // q in [0, 1]: the highest value of the bucket holding the q-th ranked
  // value, capped by max (never under-reports); 0 when empty.
  uint64_t percentile_ns(double q) const noexcept;

  friend class LatencyRecorder;

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t max_ns_ = 0;
};

class alignas(64) LatencyRecorder {
 public:
  // Owner thread only. Relaxed load+store: one writer needs no RMW.
  void record(uint64_t ns) noexcept { buckets_.record(ns, 1); }
  // Any thread. May miss the very latest records; never tears a counter.
  Histogram snapshot() const;

 private:
  RelaxedBuckets<LatencyLayout> buckets_;
};

}  // namespace flux::bench
