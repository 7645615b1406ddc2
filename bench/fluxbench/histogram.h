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

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flux::bench {

inline constexpr unsigned kSubBucketBits = 7;
inline constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128
inline constexpr unsigned kMaxExponent = 40;
inline constexpr size_t kBucketCount = kSubBuckets * (kMaxExponent - kSubBucketBits + 1);

constexpr size_t bucket_index(uint64_t ns) noexcept {
  if (ns < kSubBuckets) return static_cast<size_t>(ns);
  const unsigned exponent = 63u - static_cast<unsigned>(__builtin_clzll(ns));  // >= 7
  const uint64_t sub = (ns >> (exponent - kSubBucketBits)) & (kSubBuckets - 1);
  const size_t index = static_cast<size_t>(kSubBuckets * (exponent - kSubBucketBits + 1) + sub);
  return index < kBucketCount ? index : kBucketCount - 1;
}

// The smallest value that maps to `index`.
constexpr uint64_t bucket_lowest(size_t index) noexcept {
  if (index < kSubBuckets) return index;
  const uint64_t exponent = index / kSubBuckets - 1 + kSubBucketBits;
  const uint64_t sub = index % kSubBuckets;
  return (kSubBuckets + sub) << (exponent - kSubBucketBits);
}

// The largest value that maps to `index` (HdrHistogram's "highest equivalent").
constexpr uint64_t bucket_highest(size_t index) noexcept {
  return bucket_lowest(index + 1) - 1;
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
  void record(uint64_t ns) noexcept {
    bump(buckets_[bucket_index(ns)], 1);
    bump(sum_ns_, ns);
    if (ns > max_ns_.load(std::memory_order_relaxed)) max_ns_.store(ns, std::memory_order_relaxed);
  }
  // Any thread. May miss the very latest records; never tears a counter.
  Histogram snapshot() const;

 private:
  static void bump(std::atomic<uint64_t>& cell, uint64_t n) noexcept {
    cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::array<std::atomic<uint64_t>, kBucketCount> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
  std::atomic<uint64_t> max_ns_{0};
};

}  // namespace flux::bench
