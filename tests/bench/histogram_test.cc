// fluxbench's latency histogram (bench/fluxbench/histogram.h), an instance of
// common/log_linear_histogram.h: its precision and percentile contract.
#include "bench/fluxbench/histogram.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace flux::bench {
namespace {

TEST(FluxbenchHistogram, BucketsTileTheRangeWithUnderOnePercentError) {
  for (size_t i = 0; i + 1 < kBucketCount; ++i) {
    const uint64_t low = bucket_lowest(i);
    const uint64_t high = bucket_highest(i);
    ASSERT_EQ(bucket_index(low), i);
    ASSERT_EQ(bucket_index(high), i);
    ASSERT_EQ(high + 1, bucket_lowest(i + 1));
    if (low >= kSubBuckets) {
      ASSERT_LT(double(high - low) / double(low), 0.01) << "bucket " << i;
    }
  }
  EXPECT_EQ(bucket_index(uint64_t{1} << 50), kBucketCount - 1);
}

TEST(FluxbenchHistogram, PercentilesNeverUnderReportAndStayWithinOnePercent) {
  Histogram h;
  for (uint64_t v = 1; v <= 100'000; ++v) h.record(v * 997);
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.max_ns(), 100'000u * 997);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 100'000 * 997;
    const double got = double(h.percentile_ns(q));
    EXPECT_GE(got, exact) << q;
    EXPECT_LT(got, exact * 1.01) << q;
  }
  EXPECT_EQ(h.percentile_ns(1.0), h.max_ns());
  EXPECT_EQ(Histogram().percentile_ns(0.99), 0u);
}

TEST(FluxbenchHistogram, RecorderSnapshotMergeAndSince) {
  LatencyRecorder recorder;
  recorder.record(1'000);
  const Histogram before = recorder.snapshot();
  recorder.record(2'000'000);
  recorder.record(3'000);
  const Histogram after = recorder.snapshot();
  EXPECT_EQ(before.count(), 1u);
  EXPECT_EQ(after.count(), 3u);
  EXPECT_DOUBLE_EQ(after.mean_ns(), (1'000 + 2'000'000 + 3'000) / 3.0);
  const Histogram diff = after.since(before);
  EXPECT_EQ(diff.count(), 2u);
  EXPECT_EQ(diff.percentile_ns(0.5), bucket_highest(bucket_index(3'000)));
  Histogram merged = before;
  merged.merge(diff);
  EXPECT_EQ(merged.count(), 3u);
  EXPECT_EQ(merged.max_ns(), 2'000'000u);
}

}  // namespace
}  // namespace flux::bench
