// LatencyHistogram and HistogramSnapshot (metrics/histogram.h): bucket maths
// over the whole range, percentile accuracy against exact percentiles of
// known data sets, windows (since), merge, and the exact Prometheus buckets.
//
// Every data set is generated deterministically (no random seeds from the
// clock), so a failure reproduces.

#include "metrics/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace flux {
namespace {

constexpr double kPercentileTolerance = 0.02;  // relative, the contract is < 1.6% at midpoints
constexpr uint64_t kLastBucketUpper = uint64_t{1} << 36;  // ~68.7 s: the range's end

// The exact q-th value of `values` by the nearest-rank rule the histogram
// documents ("p99 of 100 values is the 99th"): the ceil(q*n)-th smallest.
double exact_percentile_of_sorted(const std::vector<uint64_t>& values, double q) {
  const auto rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * double(values.size()))));
  return double(values[rank - 1]);
}

double exact_percentile(std::vector<uint64_t> values, double q) {
  std::sort(values.begin(), values.end());
  return exact_percentile_of_sorted(values, q);
}

HistogramSnapshot record_all(const std::vector<uint64_t>& values) {
  LatencyHistogram h;
  for (uint64_t v : values) h.record(v);
  return h.snapshot();
}

void expect_same(const HistogramSnapshot& a, const HistogramSnapshot& b) {
  EXPECT_EQ(a.buckets, b.buckets);
  EXPECT_EQ(a.prometheus, b.prometheus);
  EXPECT_EQ(a.sum_ns, b.sum_ns);
  EXPECT_EQ(a.max_ns, b.max_ns);
}

// Checks percentile_ns against the exact value for a spread of q.
void expect_percentiles_close(const std::vector<uint64_t>& values) {
  const HistogramSnapshot s = record_all(values);
  std::vector<uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (double q : {0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0}) {
    const double exact = exact_percentile_of_sorted(sorted, q);
    const double estimate = s.percentile_ns(q);
    EXPECT_NEAR(estimate, exact, exact * kPercentileTolerance)
        << "q=" << q << " exact=" << exact << " ns, histogram says " << estimate << " ns";
    EXPECT_LE(estimate, double(s.max_ns)) << "q=" << q << ": a percentile above the max";
  }
}

// ------------------------------------------------------------ bucket maths

TEST(HistogramBuckets, BoundsTileTheRangeWithoutGapsOrOverlap) {
  EXPECT_EQ(histogram_lower_bound(0), 0u);
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    SCOPED_TRACE("bucket " + std::to_string(i));
    const uint64_t lower = histogram_lower_bound(i);
    const uint64_t upper = histogram_upper_bound(i);
    ASSERT_LT(lower, upper);
    if (i + 1 < kHistogramBuckets) {
      ASSERT_EQ(upper, histogram_lower_bound(i + 1));
    }
    // Both ends of the bucket map back to it.
    ASSERT_EQ(histogram_index(lower), i);
    if (i + 1 < kHistogramBuckets) {
      ASSERT_EQ(histogram_index(upper - 1), i);
    }
  }
  EXPECT_EQ(histogram_upper_bound(kHistogramBuckets - 1), kLastBucketUpper);
}

TEST(HistogramBuckets, BucketWidthIsAtMostOneThirtySecondOfItsLowerBound) {
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    const uint64_t lower = histogram_lower_bound(i);
    const uint64_t width = histogram_upper_bound(i) - lower;
    if (lower < kHistogramSubBuckets) {
      EXPECT_EQ(width, 1u) << "bucket " << i << ": below 32 ns every value has its own bucket";
    } else {
      EXPECT_LE(double(width) / double(lower), 1.0 / 32.0)
          << "bucket " << i << " [" << lower << ", " << lower + width << ")";
    }
  }
}

// Every value maps into a bucket whose [lower, upper) holds it: exhaustively
// up to 2^20 ns, then around every power of two and at pseudo-random points
// of every octave up to the end of the range.
TEST(HistogramBuckets, EveryValueLandsInTheBucketThatContainsIt) {
  auto check = [](uint64_t v) {
    const size_t i = histogram_index(v);
    ASSERT_LT(i, kHistogramBuckets) << "value " << v;
    ASSERT_LE(histogram_lower_bound(i), v) << "value " << v << " bucket " << i;
    ASSERT_LT(v, histogram_upper_bound(i)) << "value " << v << " bucket " << i;
  };
  for (uint64_t v = 0; v < (uint64_t{1} << 20); ++v) ASSERT_NO_FATAL_FAILURE(check(v));
  std::mt19937_64 rng(42);
  for (int e = 20; e < 36; ++e) {
    const uint64_t base = uint64_t{1} << e;
    for (uint64_t v : {base - 1, base, base + 1, 2 * base - 1}) ASSERT_NO_FATAL_FAILURE(check(v));
    for (int k = 0; k < 20000; ++k) ASSERT_NO_FATAL_FAILURE(check(base + rng() % base));
  }
}

TEST(HistogramBuckets, ValuesPastTheRangeGoToTheLastBucket) {
  for (uint64_t v : {kLastBucketUpper, kLastBucketUpper + 1, uint64_t{100'000'000'000},
                     uint64_t{1} << 50, UINT64_MAX})
    EXPECT_EQ(histogram_index(v), kHistogramBuckets - 1) << "value " << v;
  // And the documented range (1 ns .. 60 s) is inside it.
  EXPECT_LT(histogram_index(60'000'000'000), kHistogramBuckets - 1);
}

// ------------------------------------------------------------- percentiles

TEST(HistogramPercentiles, EmptyHistogramReportsZero) {
  const HistogramSnapshot empty = LatencyHistogram().snapshot();
  EXPECT_EQ(empty.count(), 0u);
  EXPECT_EQ(empty.sum_ns, 0u);
  EXPECT_EQ(empty.max_ns, 0u);
  for (double q : {0.0, 0.5, 0.99, 1.0}) EXPECT_EQ(empty.percentile_ns(q), 0.0) << "q=" << q;
  EXPECT_EQ(HistogramSnapshot{}.percentile_ns(0.5), 0.0);
}

TEST(HistogramPercentiles, UniformMicrosecondsMatchExactPercentiles) {
  std::vector<uint64_t> values;
  for (uint64_t us = 1; us <= 100'000; ++us) values.push_back(us * 1000);  // 1 µs .. 100 ms
  expect_percentiles_close(values);
}

// An exponential distribution (mean 1 ms) by its inverse CDF on a regular
// grid: deterministic, with the long tail latencies have.
TEST(HistogramPercentiles, ExponentialLikeMatchesExactPercentiles) {
  std::vector<uint64_t> values;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) {
    const double u = (i + 0.5) / kN;
    values.push_back(static_cast<uint64_t>(-std::log(1.0 - u) * 1e6) + 1);
  }
  expect_percentiles_close(values);
}

TEST(HistogramPercentiles, ConstantDataGivesThatConstant) {
  for (uint64_t value : {uint64_t{7}, uint64_t{123'456}, uint64_t{59'000'000'000}}) {
    SCOPED_TRACE("value " + std::to_string(value));
    expect_percentiles_close(std::vector<uint64_t>(10'000, value));
  }
}

// 900 fast values and 100 slow ones: the percentile jumps at rank 900.
TEST(HistogramPercentiles, TwoPointDataJumpsAtTheRightRank) {
  std::vector<uint64_t> values(900, 1'000);         // 1 µs
  values.insert(values.end(), 100, 1'000'000'000);  // 1 s
  expect_percentiles_close(values);
  const HistogramSnapshot s = record_all(values);
  EXPECT_NEAR(s.percentile_ns(0.899), 1e3, 1e3 * kPercentileTolerance);
  EXPECT_NEAR(s.percentile_ns(0.901), 1e9, 1e9 * kPercentileTolerance);
}

TEST(HistogramPercentiles, SumCountAndMaxAreExact) {
  std::vector<uint64_t> values;
  for (uint64_t i = 1; i <= 5000; ++i) values.push_back(i * i * 37);
  const HistogramSnapshot s = record_all(values);
  EXPECT_EQ(s.count(), values.size());
  EXPECT_EQ(s.sum_ns, std::accumulate(values.begin(), values.end(), uint64_t{0}));
  EXPECT_EQ(s.max_ns, *std::max_element(values.begin(), values.end()));
}

// ------------------------------------------------------ windows and merging

TEST(HistogramWindows, SinceHoldsExactlyTheObservationsInBetween) {
  LatencyHistogram h;
  std::vector<uint64_t> before, between;
  for (uint64_t i = 1; i <= 3000; ++i) before.push_back(i * 1000);                  // 1 µs .. 3 ms
  for (uint64_t i = 1; i <= 2000; ++i) between.push_back(50'000'000 + i * 10'000);  // ~50-70 ms
  for (uint64_t v : before) h.record(v);
  const HistogramSnapshot earlier = h.snapshot();
  for (uint64_t v : between) h.record(v);
  const HistogramSnapshot later = h.snapshot();

  const HistogramSnapshot window = later.since(earlier);
  const HistogramSnapshot only_between = record_all(between);
  EXPECT_EQ(window.buckets, only_between.buckets);
  EXPECT_EQ(window.prometheus, only_between.prometheus);
  EXPECT_EQ(window.sum_ns, only_between.sum_ns);
  EXPECT_EQ(window.count(), between.size());
  EXPECT_EQ(window.max_ns, later.max_ns) << "since() documents that max is kept";
  for (double q : {0.01, 0.5, 0.99})
    EXPECT_NEAR(window.percentile_ns(q), exact_percentile(between, q),
                exact_percentile(between, q) * kPercentileTolerance)
        << "q=" << q << ": the window's percentile must ignore the earlier observations";
}

TEST(HistogramWindows, SinceOfANewerSnapshotClampsToZero) {
  LatencyHistogram h;
  h.record(1000);
  const HistogramSnapshot older = h.snapshot();
  h.record(2000);
  const HistogramSnapshot newer = h.snapshot();
  const HistogramSnapshot backwards = older.since(newer);  // a reader's torn view, at worst
  EXPECT_EQ(backwards.count(), 0u);
  EXPECT_EQ(backwards.sum_ns, 0u);
  for (uint64_t n : backwards.prometheus) EXPECT_EQ(n, 0u);
  EXPECT_EQ(backwards.percentile_ns(0.5), 0.0);
  EXPECT_EQ(newer.since(newer).count(), 0u);
}

TEST(HistogramWindows, MergeEqualsRecordingBothIntoOne) {
  std::vector<uint64_t> a, b;
  for (uint64_t i = 0; i < 4000; ++i) a.push_back(100 + i * 997);
  for (uint64_t i = 0; i < 3000; ++i) b.push_back(5'000'000 + i * 123'457);
  std::vector<uint64_t> both = a;
  both.insert(both.end(), b.begin(), b.end());

  HistogramSnapshot merged = record_all(a);
  merged.merge(record_all(b));
  expect_same(merged, record_all(both));

  HistogramSnapshot with_empty = record_all(a);
  with_empty.merge(HistogramSnapshot{});
  expect_same(with_empty, record_all(a));
}

// --------------------------------------------- the exact Prometheus buckets

// The bucket a value must go to, by the `le` rule: the first bound >= value.
size_t expected_prometheus_bucket(uint64_t v) {
  for (size_t i = 0; i < kPrometheusBoundsNs.size(); ++i)
    if (v <= kPrometheusBoundsNs[i]) return i;
  return kPrometheusBoundsNs.size();  // +Inf
}

TEST(HistogramPrometheus, BoundsAreIncreasingAndEndAtSixtySeconds) {
  for (size_t i = 1; i < kPrometheusBoundsNs.size(); ++i)
    EXPECT_LT(kPrometheusBoundsNs[i - 1], kPrometheusBoundsNs[i]) << "bound " << i;
  EXPECT_EQ(kPrometheusBoundsNs.back(), 60'000'000'000u);
  EXPECT_EQ(kPrometheusBuckets, kPrometheusBoundsNs.size() + 1);
}

// le semantics: a value equal to a bound is counted in that bound's bucket,
// one nanosecond more goes to the next.
TEST(HistogramPrometheus, ABoundItselfIsInItsOwnBucket) {
  for (size_t i = 0; i < kPrometheusBoundsNs.size(); ++i) {
    const uint64_t bound = kPrometheusBoundsNs[i];
    EXPECT_EQ(LatencyHistogram::prometheus_index(bound), i) << "value == bound " << bound;
    EXPECT_EQ(LatencyHistogram::prometheus_index(bound - 1), i) << "value " << bound - 1;
    EXPECT_EQ(LatencyHistogram::prometheus_index(bound + 1), i + 1) << "value " << bound + 1;
  }
  EXPECT_EQ(LatencyHistogram::prometheus_index(0), 0u);
}

TEST(HistogramPrometheus, PastSixtySecondsIsTheInfBucket) {
  const size_t inf = kPrometheusBuckets - 1;
  for (uint64_t v : {uint64_t{60'000'000'001}, uint64_t{100'000'000'000}, UINT64_MAX / 2}) {
    EXPECT_EQ(LatencyHistogram::prometheus_index(v), inf) << "value " << v;
    LatencyHistogram h;
    h.record(v);
    EXPECT_EQ(h.snapshot().prometheus[inf], 1u) << "value " << v;
  }
}

// Each recorded value is counted in exactly one coarse bucket, the right one.
TEST(HistogramPrometheus, EachValueIsCountedInExactlyOneCoarseBucket) {
  std::vector<uint64_t> values = {0, 1, 999, 1000, 1001};
  for (uint64_t bound : kPrometheusBoundsNs)
    for (uint64_t v : {bound - 1, bound, bound + 1}) values.push_back(v);
  std::mt19937_64 rng(7);
  for (int k = 0; k < 2000; ++k) values.push_back(rng() % 70'000'000'000);

  HistogramSnapshot all_at_once;
  {
    LatencyHistogram h;
    for (uint64_t v : values) h.record(v);
    all_at_once = h.snapshot();
  }
  std::array<uint64_t, kPrometheusBuckets> expected{};
  for (uint64_t v : values) {
    LatencyHistogram h;
    h.record(v);
    const HistogramSnapshot s = h.snapshot();
    const size_t want = expected_prometheus_bucket(v);
    ++expected[want];
    for (size_t i = 0; i < kPrometheusBuckets; ++i)
      ASSERT_EQ(s.prometheus[i], i == want ? 1u : 0u) << "value " << v << ", coarse bucket " << i;
  }
  EXPECT_EQ(all_at_once.prometheus, expected);
  EXPECT_EQ(
      std::accumulate(all_at_once.prometheus.begin(), all_at_once.prometheus.end(), uint64_t{0}),
      all_at_once.count());
}

// ---------------------------------------------------------------- record_many

TEST(HistogramRecordMany, EqualsRecordingOneByOne) {
  LatencyHistogram many, one_by_one;
  const std::vector<std::pair<uint64_t, uint64_t>> batches = {
      {0, 3}, {31, 5}, {1'000, 100}, {2'500, 7}, {123'456'789, 1000}, {61'000'000'000, 2}};
  for (auto [ns, times] : batches) {
    many.record_many(ns, times);
    for (uint64_t k = 0; k < times; ++k) one_by_one.record(ns);
  }
  expect_same(many.snapshot(), one_by_one.snapshot());
  EXPECT_EQ(many.snapshot().count(), 1117u);
}

// Zero observations are no observation: max is "the largest value seen".
TEST(HistogramRecordMany, ZeroTimesChangesNothing) {
  LatencyHistogram h;
  h.record(1'000);
  const HistogramSnapshot before = h.snapshot();
  h.record_many(5'000'000, 0);
  expect_same(h.snapshot(), before);
}

}  // namespace
}  // namespace flux
