#include "metrics/histogram.h"

#include <algorithm>
#include <cmath>

namespace flux {

uint64_t HistogramSnapshot::count() const noexcept {
  uint64_t total = 0;
  for (uint64_t n : buckets) total += n;
  return total;
}

double HistogramSnapshot::percentile_ns(double q) const noexcept {
  const uint64_t total = count();
  if (total == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the q-th value, 1-based: p99 of 100 values is the 99th.
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * double(total))));
  const size_t i = bucket_at_rank(buckets, kHistogramBuckets, rank);
  if (i == kHistogramBuckets) return double(max_ns);
  const double low = double(HistogramLayout::lowest(i));
  const double high = double(HistogramLayout::highest(i));
  // Never report above the largest value actually seen.
  return std::min((low + high) / 2.0, double(std::max(max_ns, HistogramLayout::lowest(i))));
}

void HistogramSnapshot::merge(const HistogramSnapshot& other) noexcept {
  for (size_t i = 0; i < kHistogramBuckets; ++i) buckets[i] += other.buckets[i];
  for (size_t i = 0; i < kPrometheusBuckets; ++i) prometheus[i] += other.prometheus[i];
  sum_ns += other.sum_ns;
  max_ns = std::max(max_ns, other.max_ns);
}

HistogramSnapshot HistogramSnapshot::since(const HistogramSnapshot& earlier) const noexcept {
  HistogramSnapshot delta = *this;
  // Counts only grow, but a reader may have caught `earlier` mid-update: clamp.
  auto minus = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  for (size_t i = 0; i < kHistogramBuckets; ++i)
    delta.buckets[i] = minus(buckets[i], earlier.buckets[i]);
  for (size_t i = 0; i < kPrometheusBuckets; ++i)
    delta.prometheus[i] = minus(prometheus[i], earlier.prometheus[i]);
  delta.sum_ns = minus(sum_ns, earlier.sum_ns);
  return delta;
}

HistogramSnapshot LatencyHistogram::snapshot() const noexcept {
  HistogramSnapshot s;
  buckets_.load(s.buckets);
  for (size_t i = 0; i < kPrometheusBuckets; ++i)
    s.prometheus[i] = prometheus_[i].load(std::memory_order_relaxed);
  s.sum_ns = buckets_.sum();
  s.max_ns = buckets_.max();
  return s;
}

}  // namespace flux
