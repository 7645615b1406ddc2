// The reactor/metrics-thread boundary: one writer thread updates a
// LatencyHistogram, SingleWriterU64 counters and a whole ReactorMetrics
// while a reader thread snapshots them in a loop, as the metrics thread does.
//
// Invariants checked on every read:
//   - counts never go backwards from one snapshot to the next;
//   - a snapshot never shows more than the writer had begun to write;
//   - a gauge the writer keeps in {0, 1} is never seen outside it (no torn
//     or wrapped-around value);
// and after the writer is joined, the final snapshot is exact.
//
// "Begun to write" is made observable with fences: the writer publishes
// `begun = n` and then issues a release fence before record #n; the reader
// snapshots, issues an acquire fence, then reads `begun`. If the snapshot
// saw any store of record #n, the fences synchronize and `begun >= n`.
// Everything shared is std::atomic, so the test is ThreadSanitizer-clean by
// construction, and a plain (non-atomic) field added to the metrics would
// be reported by TSan here.
//
// Bounded: the writer stops after kMaxRecords or kMaxWriteTime.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include "metrics/histogram.h"
#include "metrics/reactor_metrics.h"

namespace flux {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxRecords = 2'000'000;
constexpr std::chrono::milliseconds kMaxWriteTime{1000};
constexpr uint64_t kBytesPerRecord = 100;

// Shared by writer and reader; atomics only.
struct Progress {
  std::atomic<uint64_t> begun{0};
  std::atomic<bool> reader_started{false};
  std::atomic<bool> writer_done{false};
};

// What the reader saw; read by the test thread after join (join orders it).
struct ReaderReport {
  uint64_t snapshots = 0;
  uint64_t snapshots_mid_write = 0;  // strictly between nothing and everything
  std::string first_failure;
  void fail(const std::string& why) {
    if (first_failure.empty())
      first_failure = "snapshot #" + std::to_string(snapshots) + ": " + why;
  }
};

// The latency the writer records for observation #n: spread over many
// buckets (and the +Inf Prometheus bucket) so every cell gets written.
uint64_t latency_of(uint64_t n) {
  return (n * 2654435761u) % 70'000'000'000;
}

// Runs `write(n)` for n = 1.. until the bound; publishes progress.
template <typename Write>
uint64_t run_writer(Progress& progress, Write write) {
  while (!progress.reader_started.load(std::memory_order_acquire)) std::this_thread::yield();
  const auto stop_at = Clock::now() + kMaxWriteTime;
  uint64_t n = 0;
  while (n < kMaxRecords && (n % 1024 != 0 || Clock::now() < stop_at)) {
    ++n;
    progress.begun.store(n, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    write(n);
  }
  progress.writer_done.store(true, std::memory_order_release);
  return n;
}

// Calls `read()` until the writer is done; `read` gets the writer's
// begun-count as of after its snapshot (an upper bound for what it saw).
template <typename Read>
void run_reader(Progress& progress, ReaderReport& report, Read read) {
  progress.reader_started.store(true, std::memory_order_release);
  for (;;) {
    const bool done = progress.writer_done.load(std::memory_order_acquire);
    read([&] {
      std::atomic_thread_fence(std::memory_order_acquire);
      return progress.begun.load(std::memory_order_relaxed);
    });
    ++report.snapshots;
    if (done || !report.first_failure.empty()) return;
  }
}

TEST(ConcurrentSnapshot, HistogramAndCountersAreMonotonicBoundedAndFinallyExact) {
  LatencyHistogram histogram;
  SingleWriterU64 frames, bytes, gauge;
  Progress progress;
  ReaderReport report;

  uint64_t written = 0;
  std::thread writer([&] {
    written = run_writer(progress, [&](uint64_t n) {
      gauge.add();  // the gauge is 1 while an observation is in flight
      histogram.record(latency_of(n));
      frames.add();
      bytes.add(kBytesPerRecord);
      gauge.sub();
    });
  });
  std::thread reader([&] {
    uint64_t last_count = 0, last_frames = 0, last_bytes = 0, last_sum = 0;
    run_reader(progress, report, [&](auto begun_now) {
      const HistogramSnapshot s = histogram.snapshot();
      const uint64_t f = frames.get(), b = bytes.get(), g = gauge.get();
      const uint64_t begun = begun_now();
      const uint64_t count = s.count();
      if (count < last_count) report.fail("histogram count went back");
      if (f < last_frames || b < last_bytes) report.fail("a counter went back");
      if (s.sum_ns < last_sum) report.fail("histogram sum went back");
      if (count > begun)
        report.fail("count " + std::to_string(count) + " > begun " + std::to_string(begun));
      if (f > begun || b > begun * kBytesPerRecord) report.fail("a counter is ahead of the writer");
      if (g > 1) report.fail("gauge read as " + std::to_string(g));
      uint64_t coarse = 0;
      for (uint64_t c : s.prometheus) coarse += c;
      if (coarse > begun) report.fail("coarse buckets ahead of the writer");
      if (count > 0 && count < kMaxRecords && !progress.writer_done.load(std::memory_order_relaxed))
        ++report.snapshots_mid_write;
      last_count = count, last_frames = f, last_bytes = b, last_sum = s.sum_ns;
    });
  });
  writer.join();
  reader.join();

  EXPECT_TRUE(report.first_failure.empty()) << report.first_failure;
  EXPECT_GE(report.snapshots_mid_write, 1u)
      << "the reader never caught the writer mid-way (" << report.snapshots << " snapshots)";
  ASSERT_GT(written, 0u);
  const HistogramSnapshot final_snapshot = histogram.snapshot();
  uint64_t sum = 0, max = 0;
  for (uint64_t n = 1; n <= written; ++n) {
    sum += latency_of(n);
    max = std::max(max, latency_of(n));
  }
  EXPECT_EQ(final_snapshot.count(), written);
  EXPECT_EQ(final_snapshot.sum_ns, sum);
  EXPECT_EQ(final_snapshot.max_ns, max);
  uint64_t coarse = 0;
  for (uint64_t c : final_snapshot.prometheus) coarse += c;
  EXPECT_EQ(coarse, written);
  EXPECT_EQ(frames.get(), written);
  EXPECT_EQ(bytes.get(), written * kBytesPerRecord);
  EXPECT_EQ(gauge.get(), 0u);
}

// The writer plays a reactor: it touches every group of ReactorMetrics the
// way Connection/LoopClock/Reactor do; the reader calls snapshot(metrics)
// as MetricsServer does.
void reactor_turn(ReactorMetrics& m, uint64_t n) {
  const auto ready = static_cast<size_t>(ConnState::kReady);
  m.connections.accepted_total.add();
  m.connections.by_state[ready].add();
  m.traffic.frames_in_total.add();
  m.traffic.bytes_in_total.add(kBytesPerRecord);
  m.traffic.bytes_queued.add(kBytesPerRecord);
  m.echo_latency.record(latency_of(n) % 1'000'000);
  m.traffic.bytes_queued.sub(kBytesPerRecord);
  m.traffic.frames_out_total.add();
  m.traffic.bytes_out_total.add(kBytesPerRecord);
  m.traffic.protocol_errors_total[n % kErrorCodeCount].add();
  m.pool.block_acquires_total.add();
  m.loop.iterations_total.add();
  m.loop.busy_ns_total.add(n % 1000);
  m.loop.poll_ns_total.add(1000 - n % 1000);
  m.poll_wait.record(1000 - n % 1000);
  m.loop_busy.record(n % 1000);
  if (n % 64 == 0) m.loop_lag.record(latency_of(n) % 10'000'000);
  m.loop.last_turn_monotonic_ns.set(n);
  m.connections.by_state[ready].sub();
  m.connections.closed_total[n % kCloseReasonCount].add();
}

TEST(ConcurrentSnapshot, ReactorSnapshotWhileTheReactorWrites) {
  auto metrics = std::make_unique<ReactorMetrics>();
  Progress progress;
  ReaderReport report;

  uint64_t written = 0;
  std::thread writer(
      [&] { written = run_writer(progress, [&](uint64_t n) { reactor_turn(*metrics, n); }); });
  std::thread reader([&] {
    ReactorSnapshot last;
    run_reader(progress, report, [&](auto begun_now) {
      const ReactorSnapshot s = snapshot(*metrics);
      const uint64_t begun = begun_now();
      const uint64_t counters[] = {
          s.connections.accepted_total, s.traffic.frames_in_total, s.traffic.frames_out_total,
          s.closed_connections(),       s.loop.iterations_total,   s.pool.block_acquires_total,
          s.echo_latency.count(),       s.poll_wait.count(),       s.loop_busy.count()};
      const uint64_t previous[] = {last.connections.accepted_total, last.traffic.frames_in_total,
                                   last.traffic.frames_out_total,   last.closed_connections(),
                                   last.loop.iterations_total,      last.pool.block_acquires_total,
                                   last.echo_latency.count(),       last.poll_wait.count(),
                                   last.loop_busy.count()};
      for (size_t i = 0; i < std::size(counters); ++i) {
        if (counters[i] < previous[i]) report.fail("counter #" + std::to_string(i) + " went back");
        if (counters[i] > begun)
          report.fail("counter #" + std::to_string(i) + " ahead of the writer");
      }
      if (s.traffic.bytes_in_total < last.traffic.bytes_in_total ||
          s.traffic.bytes_out_total < last.traffic.bytes_out_total)
        report.fail("byte counters went back");
      if (s.connections.by_state[static_cast<size_t>(ConnState::kReady)] > 1)
        report.fail("ready gauge outside {0,1}");
      if (s.traffic.bytes_queued != 0 && s.traffic.bytes_queued != kBytesPerRecord)
        report.fail("bytes_queued read as " + std::to_string(s.traffic.bytes_queued));
      if (s.loop.last_turn_monotonic_ns > begun) report.fail("last turn ahead of the writer");
      if (s.traffic.frames_in_total > 0 && !progress.writer_done.load(std::memory_order_relaxed))
        ++report.snapshots_mid_write;
      last = s;
    });
  });
  writer.join();
  reader.join();

  EXPECT_TRUE(report.first_failure.empty()) << report.first_failure;
  EXPECT_GE(report.snapshots_mid_write, 1u) << report.snapshots << " snapshots, none mid-write";
  ASSERT_GT(written, 0u);
  const ReactorSnapshot s = snapshot(*metrics);
  EXPECT_EQ(s.connections.accepted_total, written);
  EXPECT_EQ(s.traffic.frames_in_total, written);
  EXPECT_EQ(s.traffic.frames_out_total, written);
  EXPECT_EQ(s.traffic.bytes_in_total, written * kBytesPerRecord);
  EXPECT_EQ(s.traffic.bytes_out_total, written * kBytesPerRecord);
  EXPECT_EQ(s.traffic.bytes_queued, 0u);
  EXPECT_EQ(s.open_connections(), 0u);
  EXPECT_EQ(s.closed_connections(), written);
  EXPECT_EQ(s.loop.iterations_total, written);
  EXPECT_EQ(s.echo_latency.count(), written);
  EXPECT_EQ(s.poll_wait.count(), written);
  EXPECT_EQ(s.loop_busy.count(), written);
  EXPECT_EQ(s.loop_lag.count(), written / 64);
  EXPECT_EQ(s.loop.last_turn_monotonic_ns, written);
  uint64_t errors = 0;
  for (uint64_t e : s.traffic.protocol_errors_total) errors += e;
  EXPECT_EQ(errors, written);
}

}  // namespace
}  // namespace flux
