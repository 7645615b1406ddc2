#include "bench/fluxbench/histogram.h"

#include <algorithm>
#include <cmath>

namespace flux::bench {

static_assert(bucket_index(127) == 127 && bucket_index(128) == 128 && bucket_index(255) == 255);
static_assert(bucket_index(256) == 256 && bucket_index(257) == 256 && bucket_index(258) == 257);
static_assert(bucket_lowest(bucket_index(1'000'000)) <= 1'000'000);
static_assert(bucket_highest(bucket_index(1'000'000)) >= 1'000'000);

void Histogram::record(uint64_t ns, uint64_t times) noexcept {
  buckets_[bucket_index(ns)] += times;
  count_ += times;
  sum_ns_ += ns * times;
  max_ns_ = std::max(max_ns_, ns);
}

void Histogram::merge(const Histogram& other) noexcept {
  for (size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

Histogram Histogram::since(const Histogram& earlier) const {
  Histogram diff;
  for (size_t i = 0; i < kBucketCount; ++i) {
    diff.buckets_[i] = buckets_[i] - std::min(buckets_[i], earlier.buckets_[i]);
    diff.count_ += diff.buckets_[i];
  }
  diff.sum_ns_ = sum_ns_ - std::min(sum_ns_, earlier.sum_ns_);
  diff.max_ns_ = max_ns_;
  return diff;
}

double Histogram::mean_ns() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / static_cast<double>(count_);
}

uint64_t Histogram::percentile_ns(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  const size_t i = bucket_at_rank(buckets_, kBucketCount, rank);
  return i == kBucketCount ? max_ns_ : std::min(bucket_highest(i), max_ns_);
}

Histogram LatencyRecorder::snapshot() const {
  Histogram h;
  h.count_ = buckets_.load(h.buckets_);
  h.sum_ns_ = buckets_.sum();
  h.max_ns_ = buckets_.max();
  return h;
}

}  // namespace flux::bench
