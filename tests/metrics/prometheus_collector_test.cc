// build_metric_families + serialize_metrics (metrics/prometheus_collector.h)
// on a crafted two-reactor ScrapeInput, checked by a parser round-trip: the
// text is read back with tests/support/exposition_parser.h and every series
// compared with the snapshot it came from.
//
// Every crafted figure is distinct (per field and per reactor), so a value
// exported under the wrong name or the wrong reactor label is caught.

#include "metrics/prometheus_collector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/protocol_enums.h"
#include "support/exposition_parser.h"
#include "tests/metrics/distinct_snapshot.h"

namespace flux {
namespace {

using exposition::Exposition;
using exposition::Labels;

// The protocol's spellings, written out (docs/protocol.md section 5, docs/stats.md),
// not taken from to_string(): the test must catch a renamed label value.
const std::vector<std::string> kStates = {"connecting", "handshake", "ready", "closing"};
// Close reasons: docs/stats.md's closed_total keys, plus "taken-over" (the
// connection whose session was resumed elsewhere, docs/protocol.md section 7).
const std::vector<std::string> kReasons = {
    "bye",         "eof",      "reset",      "handshake-timeout", "idle-timeout", "protocol-error",
    "server-full", "shutdown", "taken-over", "slow-consumer"};
// FLUX_RESUME outcomes: docs/stats.md's sessions.resumes_total keys.
const std::vector<std::string> kResumeResults = {"ok", "unknown", "bad-seq", "replay-gap",
                                                 "taken-over"};
const std::vector<std::string> kErrorCodes = {
    "handshake-expected", "handshake-timeout", "unsupported-version", "frame-too-large",
    "idle-timeout",       "unknown-command",   "already-ready",       "server-full",
    "server-shutdown",    "session-taken-over"};
const std::vector<std::string> kHistograms = {"flux_loop_poll_wait_seconds",
                                              "flux_loop_busy_seconds", "flux_loop_lag_seconds",
                                              "flux_echo_latency_seconds"};

HistogramSnapshot histogram_of(const std::vector<uint64_t>& values) {
  LatencyHistogram h;
  for (uint64_t v : values) h.record(v);
  return h.snapshot();
}

// Reactor `r` (0 or 1): figures that differ per field and per reactor.
ReactorSnapshot crafted_reactor(uint64_t r) {
  ReactorSnapshot s = test::distinct_snapshot(1000 * (r + 1), 7, 1'000'000);
  // Values on, around and past the coarse bounds, including > 60 s (+Inf).
  s.poll_wait = histogram_of({1'000, 1'001, 250'000 + r, 99'000'000, 61'000'000'000});
  s.loop_busy = histogram_of({0, 500 + r, 2'500, 2'500, 10'000'000, 60'000'000'000});
  s.loop_lag = histogram_of({100'000 * (r + 1), 5'000'000});
  s.echo_latency = histogram_of({1'500'000, 1'500'000, 1'500'000, 1'500'000 + r * 1000});
  return s;
}

ScrapeInput crafted_input() {
  ScrapeInput in;
  in.version = "9.8.7";
  in.node_id = 42;
  in.labels = {"0", "1"};
  in.reactors = {crafted_reactor(0), crafted_reactor(1)};
  in.process.cpu_seconds_total = 12.5;
  in.process.resident_memory_bytes = 8'388'608;
  in.process.virtual_memory_bytes = 1'073'741'824;
  in.process.open_fds = 17;
  in.process.max_fds = 1024;
  in.process.threads = 6;
  in.process.start_time_unix_seconds = 1795305587.75;
  return in;
}

class PrometheusCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = serialize_metrics(build_metric_families(input_));
    exposition_ = exposition::parse(text_);
    ASSERT_TRUE(exposition_.errors.empty()) << exposition_.errors.front() << "\n" << text_;
  }

  static Labels reactor(size_t r, Labels more = {}) {
    more["reactor"] = std::to_string(r);
    return more;
  }

  // Values of `name` for label `label`, keyed by its value, for reactor r.
  std::map<std::string, double> by_label(const std::string& name, const std::string& label,
                                         size_t r) {
    std::map<std::string, double> out;
    for (const exposition::Sample* s : exposition_.samples(name, reactor(r)))
      out[s->labels.at(label)] = s->value;
    return out;
  }

  ScrapeInput input_ = crafted_input();
  std::string text_;
  Exposition exposition_;
};

TEST_F(PrometheusCollectorTest, EveryFamilyHasHelpTypeAndSamples) {
  EXPECT_GE(exposition_.families.size(), 30u);
  for (const auto& f : exposition_.families) {
    EXPECT_FALSE(f.help.empty()) << f.name << " has no # HELP";
    EXPECT_FALSE(f.samples.empty()) << f.name << " has no sample";
    EXPECT_NE(f.type, "untyped") << f.name;
    EXPECT_NE(f.type, "summary") << f.name << ": histograms, not summaries (STYLE.md 5)";
  }
}

TEST_F(PrometheusCollectorTest, EveryFluxSeriesCarriesBothReactorLabels) {
  for (const auto& f : exposition_.families) {
    if (!f.name.starts_with("flux_") || f.name == "flux_build_info") continue;
    std::map<std::string, size_t> per_reactor;
    for (const auto& s : f.samples) {
      auto it = s.labels.find("reactor");
      ASSERT_NE(it, s.labels.end())
          << exposition::series_key(s.name, s.labels) << " has no reactor label";
      ++per_reactor[it->second];
    }
    EXPECT_EQ(per_reactor.size(), 2u) << f.name;
    EXPECT_GT(per_reactor["0"], 0u) << f.name;
    EXPECT_EQ(per_reactor["0"], per_reactor["1"])
        << f.name << ": the reactors have different series";
  }
}

TEST_F(PrometheusCollectorTest, CountersAndOnlyCountersEndInTotal) {
  for (const auto& f : exposition_.families) {
    const bool total = f.name.ends_with("_total");
    if (f.type == "counter") {
      EXPECT_TRUE(total) << f.name << " is a counter without _total";
      for (const auto& s : f.samples) EXPECT_EQ(s.name, f.name);
    } else {
      EXPECT_FALSE(total) << f.name << " ends in _total but is a " << f.type;
    }
  }
}

TEST_F(PrometheusCollectorTest, HistogramsAreCumulativeAndEndWithInfEqualToCount) {
  for (const std::string& name : kHistograms) {
    const exposition::Family* f = exposition_.family(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->type, "histogram") << name;
    for (size_t r = 0; r < 2; ++r) {
      SCOPED_TRACE(name + " reactor " + std::to_string(r));
      // In the order they were written: le ascending, counts cumulative.
      std::vector<std::pair<double, double>> buckets;  // (le, count)
      for (const auto& s : f->samples) {
        if (s.name != name + "_bucket" || s.labels.at("reactor") != std::to_string(r)) continue;
        ASSERT_EQ(s.labels.size(), 2u);
        auto le = exposition::detail::parse_value(s.labels.at("le"));
        ASSERT_TRUE(le) << "le=\"" << s.labels.at("le") << "\"";
        buckets.emplace_back(*le, s.value);
      }
      ASSERT_EQ(buckets.size(), kPrometheusBoundsNs.size() + 1);
      for (size_t b = 0; b < kPrometheusBoundsNs.size(); ++b)
        EXPECT_NEAR(buckets[b].first, double(kPrometheusBoundsNs[b]) / 1e9, 1e-15)
            << "bucket " << b;
      for (size_t b = 1; b < buckets.size(); ++b) {
        EXPECT_LT(buckets[b - 1].first, buckets[b].first) << "le not ascending at " << b;
        EXPECT_LE(buckets[b - 1].second, buckets[b].second) << "not cumulative at " << b;
      }
      EXPECT_TRUE(std::isinf(buckets.back().first)) << "the last bucket must be le=\"+Inf\"";
      auto count = exposition_.value(name + "_count", reactor(r));
      ASSERT_TRUE(count);
      EXPECT_EQ(buckets.back().second, *count);
    }
  }
}

// Bucket by bucket against the snapshots: le inclusive, > 60 s only in +Inf,
// _count the number of observations, _sum in seconds.
TEST_F(PrometheusCollectorTest, HistogramSeriesMatchTheSnapshots) {
  using Pick = std::function<const HistogramSnapshot&(const ReactorSnapshot&)>;
  const std::vector<std::pair<std::string, Pick>> histograms = {
      {"flux_loop_poll_wait_seconds",
       [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.poll_wait; }},
      {"flux_loop_busy_seconds",
       [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.loop_busy; }},
      {"flux_loop_lag_seconds",
       [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.loop_lag; }},
      {"flux_echo_latency_seconds",
       [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.echo_latency; }}};
  for (const auto& [name, pick] : histograms) {
    for (size_t r = 0; r < 2; ++r) {
      SCOPED_TRACE(name + " reactor " + std::to_string(r));
      const HistogramSnapshot& h = pick(input_.reactors[r]);
      uint64_t cumulative = 0;
      for (size_t b = 0; b < kPrometheusBoundsNs.size(); ++b) {
        cumulative += h.prometheus[b];
        const exposition::Sample* bucket = nullptr;
        for (const auto* s : exposition_.samples(name + "_bucket", reactor(r)))
          if (std::abs(exposition::detail::parse_value(s->labels.at("le")).value_or(-1) * 1e9 -
                       double(kPrometheusBoundsNs[b])) < 0.5)
            bucket = s;
        ASSERT_NE(bucket, nullptr) << "no bucket for bound " << kPrometheusBoundsNs[b] << " ns";
        EXPECT_EQ(bucket->value, double(cumulative)) << "le " << kPrometheusBoundsNs[b] << " ns";
      }
      EXPECT_EQ(exposition_.value(name + "_bucket", reactor(r, {{"le", "+Inf"}})),
                double(h.count()));
      EXPECT_EQ(exposition_.value(name + "_count", reactor(r)), double(h.count()));
      auto sum = exposition_.value(name + "_sum", reactor(r));
      ASSERT_TRUE(sum);
      EXPECT_NEAR(*sum, double(h.sum_ns) / 1e9, 1e-12 * (1 + double(h.sum_ns) / 1e9))
          << "_sum in seconds";
    }
  }
  // Spot checks of the crafted edges, read independently of the loop above.
  // loop_busy: 0, 500, 2500, 2500, 10 ms, 60 s (== the last bound: not +Inf).
  EXPECT_EQ(exposition_.value("flux_loop_busy_seconds_bucket", reactor(0, {{"le", "2.5e-06"}})),
            4.0);
  EXPECT_EQ(exposition_.value("flux_loop_busy_seconds_bucket", reactor(0, {{"le", "60"}})), 6.0);
  // poll_wait: 61 s is only in +Inf.
  EXPECT_EQ(exposition_.value("flux_loop_poll_wait_seconds_bucket", reactor(0, {{"le", "60"}})),
            4.0);
  EXPECT_EQ(exposition_.value("flux_loop_poll_wait_seconds_bucket", reactor(0, {{"le", "+Inf"}})),
            5.0);
  // echo: 4 x 1.5 ms = 0.006 s.
  auto echo_sum = exposition_.value("flux_echo_latency_seconds_sum", reactor(0));
  ASSERT_TRUE(echo_sum);
  EXPECT_NEAR(*echo_sum, 0.006, 1e-12);
}

TEST_F(PrometheusCollectorTest, LabelValuesAreTheProtocolSpellings) {
  for (size_t r = 0; r < 2; ++r) {
    SCOPED_TRACE("reactor " + std::to_string(r));
    const ReactorSnapshot& s = input_.reactors[r];
    auto states = by_label("flux_connections", "state", r);
    auto reasons = by_label("flux_connections_closed_total", "reason", r);
    auto codes = by_label("flux_protocol_errors_total", "code", r);
    auto results = by_label("flux_resumes_total", "result", r);
    auto sessions = by_label("flux_sessions", "state", r);
    EXPECT_EQ(states.size(), kStates.size());
    EXPECT_EQ(reasons.size(), kReasons.size());
    EXPECT_EQ(codes.size(), kErrorCodes.size());
    EXPECT_EQ(results.size(), kResumeResults.size());
    EXPECT_EQ(sessions.size(), 2u);
    EXPECT_EQ(sessions["attached"], double(s.sessions.attached));
    EXPECT_EQ(sessions["detached"], double(s.sessions.detached));
    for (size_t i = 0; i < kResumeResults.size(); ++i)
      EXPECT_EQ(results[kResumeResults[i]], double(s.sessions.resumes_total[i]))
          << "result=\"" << kResumeResults[i] << "\"";
    for (size_t i = 0; i < kStates.size(); ++i)
      EXPECT_EQ(states[kStates[i]], double(s.connections.by_state[i]))
          << "state=\"" << kStates[i] << "\"";
    for (size_t i = 0; i < kReasons.size(); ++i)
      EXPECT_EQ(reasons[kReasons[i]], double(s.connections.closed_total[i]))
          << "reason=\"" << kReasons[i] << "\"";
    for (size_t i = 0; i < kErrorCodes.size(); ++i)
      EXPECT_EQ(codes[kErrorCodes[i]], double(s.traffic.protocol_errors_total[i]))
          << "code=\"" << kErrorCodes[i] << "\"";
  }
}

// Every scalar family, its type, and its value for each reactor.
TEST_F(PrometheusCollectorTest, ScalarSeriesCarryTheirReactorsFigures) {
  struct Expect {
    std::string name, type;
    Labels extra;
    std::function<double(const ReactorSnapshot&)> value;
  };
  auto secs = [](uint64_t ns) { return double(ns) / 1e9; };
  const std::vector<Expect> table = {
      {"flux_connections_accepted_total",
       "counter",
       {},
       [](auto& s) { return double(s.connections.accepted_total); }},
      {"flux_accept_errors_total",
       "counter",
       {},
       [](auto& s) { return double(s.connections.accept_errors_total); }},
      {"flux_accept_pauses_total",
       "counter",
       {},
       [](auto& s) { return double(s.connections.accept_pauses_total); }},
      {"flux_frames_received_total",
       "counter",
       {},
       [](auto& s) { return double(s.traffic.frames_in_total); }},
      {"flux_frames_sent_total",
       "counter",
       {},
       [](auto& s) { return double(s.traffic.frames_out_total); }},
      {"flux_received_bytes_total",
       "counter",
       {},
       [](auto& s) { return double(s.traffic.bytes_in_total); }},
      {"flux_sent_bytes_total",
       "counter",
       {},
       [](auto& s) { return double(s.traffic.bytes_out_total); }},
      {"flux_output_queued_bytes",
       "gauge",
       {},
       [](auto& s) { return double(s.traffic.bytes_queued); }},
      {"flux_backpressure_pauses_total",
       "counter",
       {},
       [](auto& s) { return double(s.traffic.backpressure_pauses_total); }},
      {"flux_buffer_acquires_total",
       "counter",
       {},
       [](auto& s) { return double(s.pool.block_acquires_total); }},
      {"flux_buffer_allocations_total",
       "counter",
       {{"pool", "block"}},
       [](auto& s) { return double(s.pool.block_allocations_total); }},
      {"flux_buffer_allocations_total",
       "counter",
       {{"pool", "frame_node"}},
       [](auto& s) { return double(s.pool.frame_node_allocations_total); }},
      {"flux_buffer_releases_total",
       "counter",
       {{"pool", "block"}},
       [](auto& s) { return double(s.pool.block_releases_total); }},
      {"flux_buffer_releases_total",
       "counter",
       {{"pool", "frame_node"}},
       [](auto& s) { return double(s.pool.frame_node_releases_total); }},
      {"flux_buffer_pool_in_use_bytes",
       "gauge",
       {},
       [](auto& s) { return double(s.pool.block_bytes_in_use); }},
      {"flux_buffer_pool_free_bytes",
       "gauge",
       {},
       [](auto& s) { return double(s.pool.block_bytes_free); }},
      {"flux_loop_iterations_total",
       "counter",
       {},
       [](auto& s) { return double(s.loop.iterations_total); }},
      {"flux_loop_busy_seconds_total",
       "counter",
       {},
       [&](auto& s) { return secs(s.loop.busy_ns_total); }},
      {"flux_loop_poll_wait_seconds_total",
       "counter",
       {},
       [&](auto& s) { return secs(s.loop.poll_ns_total); }},
      {"flux_context_switches_total",
       "counter",
       {{"kind", "voluntary"}},
       [](auto& s) { return double(s.loop.voluntary_switches_total); }},
      {"flux_context_switches_total",
       "counter",
       {{"kind", "involuntary"}},
       [](auto& s) { return double(s.loop.involuntary_switches_total); }},
      {"flux_sessions_created_total",
       "counter",
       {},
       [](auto& s) { return double(s.sessions.created_total); }},
      {"flux_replayed_frames_total",
       "counter",
       {},
       [](auto& s) { return double(s.sessions.frames_replayed_total); }},
      {"flux_sessions_expired_total",
       "counter",
       {},
       [](auto& s) { return double(s.sessions.expired_total); }},
      {"flux_sessions_evicted_total",
       "counter",
       {},
       [](auto& s) { return double(s.sessions.evicted_total); }},
      {"flux_replay_memory_bytes",
       "gauge",
       {},
       [](auto& s) { return double(s.sessions.replay_memory_bytes); }},
      {"flux_replay_frame_bytes",
       "gauge",
       {},
       [](auto& s) { return double(s.sessions.replay_frame_bytes); }},
      {"flux_connections",
       "gauge",
       {{"state", "ready"}},
       [](auto& s) {
         return double(s.connections.by_state[static_cast<size_t>(ConnState::kReady)]);
       }},
  };
  for (const Expect& e : table) {
    const exposition::Family* f = exposition_.family(e.name);
    ASSERT_NE(f, nullptr) << e.name << " is missing";
    EXPECT_EQ(f->type, e.type) << e.name;
    for (size_t r = 0; r < 2; ++r) {
      const auto got = exposition_.value(e.name, reactor(r, e.extra));
      ASSERT_TRUE(got) << exposition::series_key(e.name, reactor(r, e.extra)) << " is missing";
      const double want = e.value(input_.reactors[r]);
      EXPECT_NEAR(*got, want, 1e-12 * (1 + want))
          << exposition::series_key(e.name, reactor(r, e.extra));
    }
  }
}

TEST_F(PrometheusCollectorTest, ProcessFamiliesAndBuildInfo) {
  const ProcessStats& p = input_.process;
  const std::vector<std::tuple<std::string, std::string, double>> expected = {
      {"process_cpu_seconds_total", "counter", p.cpu_seconds_total},
      {"process_resident_memory_bytes", "gauge", double(p.resident_memory_bytes)},
      {"process_virtual_memory_bytes", "gauge", double(p.virtual_memory_bytes)},
      {"process_open_fds", "gauge", double(p.open_fds)},
      {"process_max_fds", "gauge", double(p.max_fds)},
      {"process_threads", "gauge", double(p.threads)},
      {"process_start_time_seconds", "gauge", p.start_time_unix_seconds},
  };
  for (const auto& [name, type, value] : expected) {
    const exposition::Family* f = exposition_.family(name);
    ASSERT_NE(f, nullptr) << name << " is missing";
    EXPECT_EQ(f->type, type) << name;
    ASSERT_EQ(f->samples.size(), 1u) << name;
    EXPECT_TRUE(f->samples[0].labels.empty()) << name << ": process figures have no reactor";
    EXPECT_NEAR(f->samples[0].value, value, 1e-9 * value) << name;
  }
  const exposition::Family* info = exposition_.family("flux_build_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->type, "gauge");
  ASSERT_EQ(info->samples.size(), 1u);
  EXPECT_EQ(info->samples[0].labels, (Labels{{"node", "42"}, {"version", "9.8.7"}}));
  EXPECT_EQ(info->samples[0].value, 1.0);
}

// The gauge lists only live states: CLOSED connections are gone.
TEST_F(PrometheusCollectorTest, NoClosedStateSeries) {
  EXPECT_TRUE(exposition_.samples("flux_connections", {{"state", "closed"}}).empty());
}

// Reactor labels come from ScrapeInput::labels when given.
TEST(PrometheusCollector, ReactorLabelsComeFromTheInput) {
  ScrapeInput in = crafted_input();
  in.labels = {"east", "west"};
  const Exposition e = exposition::parse(serialize_metrics(build_metric_families(in)));
  ASSERT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.value("flux_frames_received_total", {{"reactor", "west"}}),
            double(in.reactors[1].traffic.frames_in_total));
  EXPECT_TRUE(e.samples("flux_frames_received_total", {{"reactor", "0"}}).empty());
}

}  // namespace
}  // namespace flux
