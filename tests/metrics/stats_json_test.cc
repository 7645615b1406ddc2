// build_stats_json (metrics/stats_json.h) on crafted input: the shape
// against docs/stats.md itself (read from the source tree and expanded), the
// totals against the reactors, the rates against known deltas over known
// windows, and the latency blocks against the histograms they came from.

#include "metrics/stats_json.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/protocol_enums.h"
#include "tests/metrics/distinct_snapshot.h"

namespace flux {
namespace {

using nlohmann::json;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSecond = 1'000'000'000;
constexpr double kPercentileTolerance = 0.02;

// ----------------------------------------------------- docs/stats.md schema

// The jsonc blocks of docs/stats.md, located from this source file.
std::vector<std::string> doc_blocks(std::string& error) {
  const auto doc =
      std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "docs" / "stats.md";
  std::ifstream in(doc);
  if (!in) {
    error = "cannot read " + doc.string();
    return {};
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string md = text.str();
  std::vector<std::string> blocks;
  for (size_t at = md.find("```jsonc\n"); at != std::string::npos; at = md.find("```jsonc\n", at)) {
    at += 9;
    const size_t end = md.find("```", at);
    blocks.push_back(md.substr(at, end - at));
  }
  return blocks;
}

// The doc's jsonc: JSON plus // and /* */ comments, and the trailing commas
// a comment leaves behind ("reactor": "0", /* a reactor block */ }).
json parse_jsonc(const std::string& text, std::string& error) {
  std::string plain;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      plain += c;
      if (c == '\\' && i + 1 < text.size())
        plain += text[++i];
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
      plain += c;
    } else if (text.compare(i, 2, "//") == 0) {
      const size_t end = text.find('\n', i);
      if (end == std::string::npos) break;
      i = end - 1;  // keep the newline
    } else if (text.compare(i, 2, "/*") == 0) {
      const size_t end = text.find("*/", i + 2);
      if (end == std::string::npos) break;
      i = end + 1;
    } else {
      plain += c;
    }
  }
  plain = std::regex_replace(plain, std::regex(R"(,(\s*[}\]]))"), "$1");
  json parsed = json::parse(plain, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) error = "docs/stats.md: a jsonc block does not parse:\n" + plain;
  return parsed;
}

// The document the doc describes, with its shorthand expanded: "total" and
// each reactor are full reactor blocks, "10s" has the keys of "1s", every
// latency block those of "echo_latency", and protocol_errors_total every
// error code.
json documented_stats(std::string& error) {
  const std::vector<std::string> blocks = doc_blocks(error);
  if (blocks.size() != 2) {
    if (error.empty())
      error = "expected 2 jsonc blocks in docs/stats.md, found " + std::to_string(blocks.size());
    return nullptr;
  }
  json top = parse_jsonc(blocks[0], error);
  json block = parse_jsonc(blocks[1], error);
  if (!error.empty()) return nullptr;
  block["rates"]["10s"] = block["rates"]["1s"];
  for (auto& [name, latency] : block["latency_seconds"].items())
    if (latency.empty()) latency = block["latency_seconds"]["echo_latency"];
  json& errors = block["traffic"]["protocol_errors_total"];
  errors.erase("...");
  for (int i = 0; i < kErrorCodeCount; ++i)
    errors[std::string(to_string(static_cast<ErrorCode>(i)))] = 0;
  top["total"] = block;
  json reactor = block;
  reactor["reactor"] = top["reactors"][0]["reactor"];
  top["reactors"] = json::array({reactor});
  return top;
}

std::string type_name(const json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "float";
  return j.type_name();
}

// Every documented key is present with the documented type (integers stay
// integers, floats floats); arrays are checked element by element.
void expect_documented(const json& doc, const json& actual, const std::string& path,
                       std::vector<std::string>& problems) {
  if (type_name(doc) != type_name(actual)) {
    problems.push_back(path + ": documented " + type_name(doc) + ", got " + type_name(actual));
    return;
  }
  if (doc.is_object()) {
    for (auto& [key, value] : doc.items()) {
      if (!actual.contains(key))
        problems.push_back(path + "." + key + ": documented, missing");
      else
        expect_documented(value, actual[key], path + "." + key, problems);
    }
  } else if (doc.is_array() && !doc.empty()) {
    for (size_t i = 0; i < actual.size(); ++i)
      expect_documented(doc[0], actual[i], path + "[" + std::to_string(i) + "]", problems);
  }
}

// The reverse: every key served is documented.
void expect_no_undocumented(const json& doc, const json& actual, const std::string& path,
                            std::vector<std::string>& problems) {
  if (!actual.is_object() || !doc.is_object()) {
    if (actual.is_array() && doc.is_array() && !doc.empty())
      for (size_t i = 0; i < actual.size(); ++i)
        expect_no_undocumented(doc[0], actual[i], path + "[" + std::to_string(i) + "]", problems);
    return;
  }
  for (auto& [key, value] : actual.items()) {
    if (!doc.contains(key))
      problems.push_back(path + "." + key + ": served, not in docs/stats.md");
    else
      expect_no_undocumented(doc[key], value, path + "." + key, problems);
  }
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "  " + line + "\n";
  return out;
}

// ------------------------------------------------------------ crafted input

HistogramSnapshot histogram(std::initializer_list<std::pair<uint64_t, uint64_t>> value_times) {
  LatencyHistogram h;
  for (auto [ns, times] : value_times) h.record_many(ns, times);
  return h.snapshot();
}

// Moves every counter of `s` forward by k units (distinct per counter) and
// the loop clock by busy + poll.
ReactorSnapshot advance(ReactorSnapshot s, uint64_t k, uint64_t busy_ns, uint64_t poll_ns) {
  s.traffic.frames_in_total += 1000 * k;
  s.traffic.frames_out_total += 900 * k;
  s.traffic.bytes_in_total += 68'000 * k;
  s.traffic.bytes_out_total += 61'000 * k;
  s.connections.accepted_total += 3 * k;
  s.connections.closed_total[static_cast<size_t>(CloseReason::kBye)] += 2 * k;
  s.connections.closed_total[static_cast<size_t>(CloseReason::kEof)] += k;
  s.pool.block_allocations_total += k;
  s.pool.frame_node_allocations_total += 2 * k;
  s.pool.block_releases_total += 5 * k;
  s.pool.frame_node_releases_total += k;
  s.loop.voluntary_switches_total += 10 * k;
  s.loop.involuntary_switches_total += 4 * k;
  s.loop.iterations_total += 950 * k;
  s.loop.busy_ns_total += busy_ns;
  s.loop.poll_ns_total += poll_ns;
  return s;
}

// Reactor r's figures at the start of the 10 s window: every cell distinct.
ReactorSnapshot base_reactor(uint64_t r) {
  return test::distinct_snapshot(100 * (r + 1), 3, kMs);
}

// Echo latencies, per reactor: A before the 1 s window, B inside it, C after
// its newer sample (seen only by the request's own snapshot).
constexpr uint64_t kEchoA[2] = {10'000, 20'000};    // 10 µs, 20 µs  x 1000
constexpr uint64_t kEchoB[2] = {3 * kMs, 7 * kMs};  // 3 ms, 7 ms    x 500, x 200
constexpr uint64_t kEchoBTimes[2] = {500, 200};
constexpr uint64_t kEchoC = 50 * kMs;  // 50 ms         x 100
// Loop clock advance in the 1 s window: reactor 0 is 5% busy, reactor 1 60%.
constexpr uint64_t kBusy1s[2] = {25 * kMs, 300 * kMs};
constexpr uint64_t kPoll1s[2] = {475 * kMs, 200 * kMs};
constexpr uint64_t kRateUnits1s[2] = {1, 3};   // k of advance() over the 1 s window
constexpr uint64_t kRateUnits10s[2] = {4, 9};  // and over the 10 s window
constexpr double kSpan1s = 0.5, kSpan10s = 5.0;
constexpr uint64_t kNow = 100 * kSecond;
constexpr uint64_t kLastTurn[2] = {kNow - 100 * kMs, kNow - 500 * kMs};

struct Crafted {
  StatsInput input;
  ReactorSnapshot older1[2], newer1[2], older10[2], newer10[2];
};

Crafted crafted() {
  Crafted c;
  StatsInput& in = c.input;
  in.version = "9.8.7";
  in.uptime_seconds = 12.5;
  in.now_unix_seconds = 1795305600.25;
  in.now_monotonic_ns = kNow;
  in.block_size_bytes = 69'632;
  in.labels = {"0", "1"};
  Sample s1_old, s1_new, s10_old, s10_new;
  for (size_t r = 0; r < 2; ++r) {
    ReactorSnapshot base = base_reactor(r);
    base.echo_latency = histogram({{kEchoA[r], 1000}});
    base.loop_lag = histogram({{1 * kMs, 10}});
    c.older10[r] = base;
    c.older1[r] = advance(base, kRateUnits10s[r] - kRateUnits1s[r], 1 * kSecond, 3 * kSecond);
    c.newer1[r] = advance(c.older1[r], kRateUnits1s[r], kBusy1s[r], kPoll1s[r]);
    c.newer1[r].echo_latency = histogram({{kEchoA[r], 1000}, {kEchoB[r], kEchoBTimes[r]}});
    c.newer1[r].loop_lag = histogram({{1 * kMs, 10}, {(r + 2) * kMs, 10}});
    c.newer10[r] = c.newer1[r];
    ReactorSnapshot now = advance(c.newer1[r], 1, 0, 0);
    now.echo_latency = histogram({{kEchoA[r], 1000}, {kEchoB[r], kEchoBTimes[r]}, {kEchoC, 100}});
    now.loop_lag = c.newer1[r].loop_lag;
    now.poll_wait = histogram({{100 * kMs, 5 + r}});
    now.loop_busy = histogram({{20'000, 7 + r}});
    now.loop.last_turn_monotonic_ns = kLastTurn[r];
    in.reactors.push_back(now);
    s1_old.reactors.push_back(c.older1[r]);
    s1_new.reactors.push_back(c.newer1[r]);
    s10_old.reactors.push_back(c.older10[r]);
    s10_new.reactors.push_back(c.newer10[r]);
  }
  s1_new.monotonic_ns = s10_new.monotonic_ns = kNow - 200 * kMs;
  s1_old.monotonic_ns = s1_new.monotonic_ns - static_cast<uint64_t>(kSpan1s * 1e9);
  s10_old.monotonic_ns = s10_new.monotonic_ns - static_cast<uint64_t>(kSpan10s * 1e9);
  s1_old.process.cpu_seconds_total = 10.0;
  s1_new.process.cpu_seconds_total = 10.25;  // 0.25 s of CPU in 0.5 s: 50%
  in.process = {10.5, 8'388'608, 1u << 30, 12, 1'048'576, 4, 1795305587.75};
  in.last_1s = StatsHistory::Window{s1_new, s1_old};
  in.last_10s = StatsHistory::Window{s10_new, s10_old};
  return c;
}

class StatsJsonTest : public ::testing::Test {
 protected:
  Crafted c_ = crafted();
  json out_ = build_stats_json(c_.input);
  const json& reactor(size_t r) const { return out_["reactors"][r]; }
};

// ------------------------------------------------------------------- shape

TEST_F(StatsJsonTest, EveryDocumentedKeyIsPresentWithItsType) {
  std::string error;
  const json doc = documented_stats(error);
  ASSERT_TRUE(error.empty()) << error;
  std::vector<std::string> problems;
  expect_documented(doc, out_, "", problems);
  EXPECT_TRUE(problems.empty()) << "/stats differs from docs/stats.md:\n" << join(problems);
  ASSERT_EQ(out_["reactors"].size(), 2u);
  EXPECT_EQ(reactor(0)["reactor"], "0");
  EXPECT_EQ(reactor(1)["reactor"], "1");
}

TEST_F(StatsJsonTest, EveryServedKeyIsDocumented) {
  std::string error;
  const json doc = documented_stats(error);
  ASSERT_TRUE(error.empty()) << error;
  std::vector<std::string> problems;
  expect_no_undocumented(doc, out_, "", problems);
  EXPECT_TRUE(problems.empty()) << "keys missing from docs/stats.md:\n" << join(problems);
}

TEST_F(StatsJsonTest, TopLevelFiguresPassThrough) {
  EXPECT_EQ(out_["version"], "9.8.7");
  EXPECT_DOUBLE_EQ(out_["uptime_seconds"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(out_["now_unix_seconds"].get<double>(), 1795305600.25);
  const json& p = out_["process"];
  EXPECT_DOUBLE_EQ(p["cpu_seconds_total"].get<double>(), 10.5);
  EXPECT_EQ(p["resident_memory_bytes"], 8'388'608u);
  EXPECT_EQ(p["open_fds"], 12u);
  EXPECT_EQ(p["max_fds"], 1'048'576u);
  EXPECT_EQ(p["threads"], 4u);
  EXPECT_DOUBLE_EQ(p["start_time_unix_seconds"].get<double>(), 1795305587.75);
  EXPECT_NEAR(p["cpu_percent_1s"].get<double>(), 50.0, 1e-9);
}

TEST_F(StatsJsonTest, ReactorBlocksCarryTheirSnapshot) {
  for (size_t r = 0; r < 2; ++r) {
    SCOPED_TRACE("reactor " + std::to_string(r));
    const ReactorSnapshot& s = c_.input.reactors[r];
    const json& b = reactor(r);
    const json& conn = b["connections"];
    EXPECT_EQ(conn["by_state"]["connecting"], s.connections.by_state[0]);
    EXPECT_EQ(conn["by_state"]["handshake"], s.connections.by_state[1]);
    EXPECT_EQ(conn["by_state"]["ready"], s.connections.by_state[2]);
    EXPECT_EQ(conn["by_state"]["closing"], s.connections.by_state[3]);
    EXPECT_EQ(conn["open"], s.connections.by_state[0] + s.connections.by_state[1] +
                                s.connections.by_state[2] + s.connections.by_state[3]);
    EXPECT_EQ(conn["accepted_total"], s.connections.accepted_total);
    EXPECT_EQ(conn["closed_total"]["bye"],
              s.connections.closed_total[static_cast<size_t>(CloseReason::kBye)]);
    EXPECT_EQ(conn["closed_total"]["protocol-error"],
              s.connections.closed_total[static_cast<size_t>(CloseReason::kProtocolError)]);
    EXPECT_EQ(b["traffic"]["frames_in_total"], s.traffic.frames_in_total);
    EXPECT_EQ(b["traffic"]["bytes_out_total"], s.traffic.bytes_out_total);
    EXPECT_EQ(b["traffic"]["protocol_errors_total"]["handshake-expected"],
              s.traffic.protocol_errors_total[0]);
    EXPECT_EQ(b["traffic"]["protocol_errors_total"]["session-taken-over"],
              s.traffic.protocol_errors_total[9]);
    EXPECT_EQ(b["pool"]["block_size_bytes"], 69'632u);
    EXPECT_EQ(b["pool"]["block_allocations_total"], s.pool.block_allocations_total);
    EXPECT_EQ(b["pool"]["frame_node_allocations_total"], s.pool.frame_node_allocations_total);
    EXPECT_EQ(b["pool"]["block_releases_total"], s.pool.block_releases_total);
    EXPECT_EQ(b["pool"]["frame_node_releases_total"], s.pool.frame_node_releases_total);
    EXPECT_EQ(b["sessions"]["detached"], s.sessions.detached);
    EXPECT_EQ(b["sessions"]["resumes_total"]["replay-gap"],
              s.sessions.resumes_total[static_cast<size_t>(ResumeResult::kReplayGap)]);
    EXPECT_EQ(b["loop"]["involuntary_switches_total"], s.loop.involuntary_switches_total);
    EXPECT_EQ(b["loop"]["iterations_total"], s.loop.iterations_total);
    EXPECT_DOUBLE_EQ(b["loop"]["busy_seconds_total"].get<double>(),
                     double(s.loop.busy_ns_total) / 1e9);
    EXPECT_DOUBLE_EQ(b["loop"]["poll_seconds_total"].get<double>(),
                     double(s.loop.poll_ns_total) / 1e9);
    EXPECT_NEAR(b["loop"]["last_turn_age_seconds"].get<double>(), double(kNow - kLastTurn[r]) / 1e9,
                1e-9);
  }
}

// ------------------------------------------------------------------ totals

// Walks the total block against both reactor blocks; every numeric leaf
// must match a rule, so a new key cannot slip past unchecked.
void expect_total(const json& total, const json& r0, const json& r1, const std::string& path,
                  std::vector<std::string>& problems) {
  if (total.is_object()) {
    for (auto& [key, value] : total.items()) {
      if (!r0.contains(key) || !r1.contains(key)) {
        problems.push_back(path + "." + key + ": in total, not in a reactor block");
        continue;
      }
      expect_total(value, r0[key], r1[key], path + "." + key, problems);
    }
    return;
  }
  if (!total.is_number()) return;
  const double t = total.get<double>(), a = r0.get<double>(), b = r1.get<double>();
  auto matches = [&path](const char* pattern) {
    return std::regex_match(path, std::regex(pattern));
  };
  double want;
  if (matches(R"(\.latency_seconds\.\w+\.(last_1s\.)?p\d+)") ||
      matches(R"(\.rates\.\w+\.loop_utilization)"))
    return;  // not additive: checked against merged inputs by their own tests
  else if (matches(R"(\.latency_seconds\.\w+\.max)") || path == ".loop.last_turn_age_seconds")
    want = std::max(a, b);
  else if (path == ".pool.block_size_bytes")
    want = a;
  else
    want = a + b;  // counters, gauges, counts, sums, rates
  if (std::abs(t - want) > 1e-9 * (1 + std::abs(want)))
    problems.push_back(path + ": total " + std::to_string(t) + ", reactors give " +
                       std::to_string(want));
}

TEST_F(StatsJsonTest, TotalsEqualTheSumOfTheReactors) {
  std::vector<std::string> problems;
  expect_total(out_["total"], reactor(0), reactor(1), "", problems);
  EXPECT_TRUE(problems.empty()) << join(problems);
  EXPECT_FALSE(out_["total"].contains("reactor"));
}

TEST_F(StatsJsonTest, TotalPercentilesComeFromTheMergedHistograms) {
  HistogramSnapshot merged = c_.input.reactors[0].echo_latency;
  merged.merge(c_.input.reactors[1].echo_latency);
  const json& echo = out_["total"]["latency_seconds"]["echo_latency"];
  for (auto [key, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}})
    EXPECT_DOUBLE_EQ(echo[key].get<double>(), merged.percentile_ns(q) / 1e9) << key;
  HistogramSnapshot window = c_.newer1[0].echo_latency.since(c_.older1[0].echo_latency);
  window.merge(c_.newer1[1].echo_latency.since(c_.older1[1].echo_latency));
  EXPECT_DOUBLE_EQ(echo["last_1s"]["p99"].get<double>(), window.percentile_ns(0.99) / 1e9);
}

// ------------------------------------------------------------------- rates

TEST_F(StatsJsonTest, RatesAreDeltasOverTheWindowSpan) {
  struct Window {
    const char* key;
    const uint64_t* units;
    double span;
  };
  for (const Window& w :
       {Window{"1s", kRateUnits1s, kSpan1s}, Window{"10s", kRateUnits10s, kSpan10s}}) {
    double sum_frames_in = 0;
    for (size_t r = 0; r < 2; ++r) {
      SCOPED_TRACE(std::string(w.key) + " reactor " + std::to_string(r));
      const json& rates = reactor(r)["rates"][w.key];
      const double k = double(w.units[r]);
      EXPECT_NEAR(rates["frames_in"].get<double>(), 1000 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["frames_out"].get<double>(), 900 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["bytes_in"].get<double>(), 68'000 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["bytes_out"].get<double>(), 61'000 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["accepted"].get<double>(), 3 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["closed"].get<double>(), 3 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["buffer_allocations"].get<double>(), 3 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["buffer_releases"].get<double>(), 6 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["context_switches_voluntary"].get<double>(), 10 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["context_switches_involuntary"].get<double>(), 4 * k / w.span, 1e-6);
      EXPECT_NEAR(rates["loop_iterations"].get<double>(), 950 * k / w.span, 1e-6);
      sum_frames_in += 1000 * k / w.span;
    }
    EXPECT_NEAR(out_["total"]["rates"][w.key]["frames_in"].get<double>(), sum_frames_in, 1e-6)
        << w.key;
  }
  // The example of the brief: 1000 frames in 0.5 s.
  EXPECT_NEAR(reactor(0)["rates"]["1s"]["frames_in"].get<double>(), 2000.0, 1e-9);
}

TEST_F(StatsJsonTest, LoopUtilizationIsBusyOverBusyPlusPoll) {
  EXPECT_NEAR(reactor(0)["rates"]["1s"]["loop_utilization"].get<double>(), 0.05, 1e-12);
  EXPECT_NEAR(reactor(1)["rates"]["1s"]["loop_utilization"].get<double>(), 0.6, 1e-12);
  // Total: summed times, not a sum (nor a mean) of ratios.
  EXPECT_NEAR(out_["total"]["rates"]["1s"]["loop_utilization"].get<double>(), 325.0 / 1000.0,
              1e-12);
  for (size_t r = 0; r < 2; ++r) {
    const double u = reactor(r)["rates"]["10s"]["loop_utilization"].get<double>();
    EXPECT_GE(u, 0.0);
    EXPECT_LE(u, 1.0);
  }
}

// ----------------------------------------------------------------- latency

TEST_F(StatsJsonTest, LatencyBlocksAreInSecondsWithWindowPercentiles) {
  for (size_t r = 0; r < 2; ++r) {
    SCOPED_TRACE("reactor " + std::to_string(r));
    const json& echo = reactor(r)["latency_seconds"]["echo_latency"];
    const HistogramSnapshot& life = c_.input.reactors[r].echo_latency;
    EXPECT_EQ(echo["count"], 1000 + kEchoBTimes[r] + 100);
    EXPECT_NEAR(echo["sum"].get<double>(), double(life.sum_ns) / 1e9, 1e-12);
    EXPECT_NEAR(echo["max"].get<double>(), 0.050, 1e-12);
    // Since start: the median is an A value, p999 a C value, in seconds.
    EXPECT_NEAR(echo["p50"].get<double>(), double(kEchoA[r]) / 1e9,
                double(kEchoA[r]) / 1e9 * kPercentileTolerance);
    EXPECT_NEAR(echo["p999"].get<double>(), 0.050, 0.050 * kPercentileTolerance);
    // Last second: only B, whatever came before or after the window.
    const json& last = echo["last_1s"];
    const double b = double(kEchoB[r]) / 1e9;
    EXPECT_EQ(last["count"], kEchoBTimes[r]);
    for (const char* key : {"p50", "p90", "p99", "p999"})
      EXPECT_NEAR(last[key].get<double>(), b, b * kPercentileTolerance) << "last_1s." << key;
    // loop_lag's window: 10 x 1 ms before, 10 x (r+2) ms inside.
    const json& lag = reactor(r)["latency_seconds"]["loop_lag"]["last_1s"];
    EXPECT_EQ(lag["count"], 10u);
    const double lag_ms = double(r + 2) / 1e3;
    EXPECT_NEAR(lag["p50"].get<double>(), lag_ms, lag_ms * kPercentileTolerance);
    // poll_wait has no window data (the samples hold none): count 0, p 0.
    EXPECT_EQ(reactor(r)["latency_seconds"]["poll_wait"]["last_1s"]["count"], 0u);
    EXPECT_EQ(reactor(r)["latency_seconds"]["poll_wait"]["count"], 5 + r);
    EXPECT_NEAR(reactor(r)["latency_seconds"]["poll_wait"]["p50"].get<double>(), 0.1,
                0.1 * kPercentileTolerance);
  }
}

// Before the sampler has two samples: no windows. Rates and windowed
// figures are zero, the lifetime figures are still there.
TEST(StatsJson, WithoutWindowsRatesAndLastSecondAreZero) {
  StatsInput in = crafted().input;
  in.last_1s.reset();
  in.last_10s.reset();
  const json out = build_stats_json(in);
  for (const json* block : {&out["total"], &out["reactors"][0], &out["reactors"][1]}) {
    for (const char* window : {"1s", "10s"})
      for (auto& [key, value] : (*block)["rates"][window].items())
        EXPECT_EQ(value.get<double>(), 0.0) << window << "." << key;
    for (auto& [name, latency] : (*block)["latency_seconds"].items()) {
      for (auto& [key, value] : latency["last_1s"].items())
        EXPECT_EQ(value.get<double>(), 0.0) << name << ".last_1s." << key;
    }
    EXPECT_GT((*block)["latency_seconds"]["echo_latency"]["count"].get<uint64_t>(), 0u);
  }
  EXPECT_EQ(out["process"]["cpu_percent_1s"].get<double>(), 0.0);
}

TEST(StatsJson, NoReactorsGivesAnEmptyListAndZeroTotals) {
  StatsInput in;
  in.version = "x";
  const json out = build_stats_json(in);
  EXPECT_TRUE(out["reactors"].is_array());
  EXPECT_TRUE(out["reactors"].empty());
  EXPECT_EQ(out["total"]["connections"]["open"], 0u);
  EXPECT_EQ(out["total"]["latency_seconds"]["echo_latency"]["p99"].get<double>(), 0.0);
}

}  // namespace
}  // namespace flux
