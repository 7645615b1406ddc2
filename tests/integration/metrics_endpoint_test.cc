// The metrics endpoints of the real binary (/metrics, /stats, /connections,
// /healthz, /), against what the test itself did over the client port.
//
// The figures are live: the reactor updates them just after it acts (an
// echo's counters move right after the kernel took it), so every comparison
// polls until equal, bounded by a deadline; a value that overshoots fails at
// once. Each test runs its own gateway, so every counter starts at zero.
//
// Every test ends with SIGTERM and requires exit status 0: under
// ThreadSanitizer a race reported inside the gateway makes it exit 66.

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using exposition::Exposition;
using exposition::Labels;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kPollEvery{20};
constexpr seconds kExitWait{10};

// --------------------------------------------------------------- HTTP side

// MetricsHttp's readers, with an unreadable or unparsable endpoint a test
// failure (even inside a polling loop: these endpoints never fail).
std::optional<std::string> checked_body(MetricsHttp& http, const std::string& path) {
  std::string why;
  auto body = http.body(path, &why);
  if (!body) ADD_FAILURE() << why;
  return body;
}

std::optional<Exposition> checked_scrape(MetricsHttp& http) {
  std::string why;
  auto e = http.scrape(&why);
  if (!e) ADD_FAILURE() << why;
  return e;
}

std::optional<json> checked_stats(MetricsHttp& http) {
  std::string why;
  auto stats = http.get_json("/stats", &why);
  if (!stats) ADD_FAILURE() << why;
  return stats;
}

// Polls `probe` until it succeeds or `deadline`; returns its last verdict.
::testing::AssertionResult eventually(Deadline deadline,
                                      const std::function<::testing::AssertionResult()>& probe) {
  for (;;) {
    ::testing::AssertionResult verdict = probe();
    if (verdict || Clock::now() >= deadline) return verdict;
    std::this_thread::sleep_for(kPollEvery);
  }
}

// Compares a series with `want`; a missing series is a failure too.
::testing::AssertionResult series_is(const Exposition& e, const std::string& name,
                                     const Labels& labels, double want) {
  auto got = e.value(name, labels);
  if (!got)
    return ::testing::AssertionFailure() << exposition::series_key(name, labels) << " is missing";
  if (*got != want)
    return ::testing::AssertionFailure()
           << exposition::series_key(name, labels) << " = " << *got << ", want " << want;
  return ::testing::AssertionSuccess();
}

// Every listed series equals its value, in one scrape.
using Expected = std::vector<std::tuple<std::string, Labels, double>>;
::testing::AssertionResult scrape_shows(MetricsHttp& http, const Expected& expected) {
  auto e = checked_scrape(http);
  if (!e) return ::testing::AssertionFailure() << "no scrape";
  for (const auto& [name, labels, want] : expected)
    if (auto verdict = series_is(*e, name, labels, want); !verdict) return verdict;
  return ::testing::AssertionSuccess();
}

Labels r0(Labels more = {}) {
  more["reactor"] = "0";
  return more;
}

// The local port of a client's socket: its peer as the gateway sees it.
uint16_t local_port(const TestClient& client) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockname(client.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

size_t frame_bytes(std::string_view payload) {
  return 4 + payload.size();
}

// ------------------------------------------------------------------ fixture

class MetricsEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    started_before_ = Clock::now();
    ASSERT_TRUE(gateway_.start(gateway_args()));
    started_after_ = Clock::now();
    http_ = std::make_unique<MetricsHttp>(gateway_.metrics_port());
  }

  // Clean shutdown, exit status 0: the TSan build reports races as exit 66.
  void TearDown() override {
    clients_.clear();
    http_.reset();
    if (gateway_.pid() < 0) return;  // never started: SetUp said why
    EXPECT_TRUE(gateway_.stop_cleanly(kExitWait));
  }

  virtual std::vector<std::string> gateway_args() const { return {"--linger", "1s"}; }

  TestClient& new_client() {
    clients_.emplace_back();
    return clients_.back();
  }

  // A connected, handshaken client kept until the end of the test.
  ::testing::AssertionResult ready_client(std::string* session_id = nullptr) {
    TestClient& c = new_client();
    if (auto ok = c.connect(gateway_.port()); !ok) return ok;
    return c.handshake(after(kPromptWait), session_id);
  }

  GatewayProcess gateway_;
  std::unique_ptr<MetricsHttp> http_;
  std::deque<TestClient> clients_;  // references stay valid as it grows
  Clock::time_point started_before_, started_after_;
};

// ------------------------------------------------------------------- tests

TEST_F(MetricsEndpointTest, ReadyGaugeCountsHandshakenClients) {
  constexpr int kClients = 7;
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(ready_client()) << "client " << i;

  EXPECT_TRUE(eventually(after(kPromptWait), [&] {
    return scrape_shows(*http_, {{"flux_connections", r0({{"state", "ready"}}), kClients},
                                 {"flux_connections", r0({{"state", "handshake"}}), 0},
                                 {"flux_connections", r0({{"state", "connecting"}}), 0},
                                 {"flux_connections", r0({{"state", "closing"}}), 0},
                                 {"flux_connections_accepted_total", r0(), kClients},
                                 {"flux_sessions", r0({{"state", "attached"}}), kClients}});
  }));
  EXPECT_TRUE(eventually(after(kPromptWait), [&]() -> ::testing::AssertionResult {
    auto s = checked_stats(*http_);
    if (!s) return ::testing::AssertionFailure() << "no /stats";
    for (const json* block : {&(*s)["total"], &(*s)["reactors"][0]}) {
      const json& c = (*block)["connections"];
      if (c["by_state"]["ready"] != kClients || c["open"] != kClients ||
          c["by_state"]["handshake"] != 0)
        return ::testing::AssertionFailure() << "connections: " << c.dump();
    }
    return ::testing::AssertionSuccess();
  }));

  // Three leave: the gauge follows them down.
  for (int i = 0; i < 3; ++i) clients_[static_cast<size_t>(i)].close();
  EXPECT_TRUE(eventually(after(kPromptWait), [&] {
    return scrape_shows(*http_, {{"flux_connections", r0({{"state", "ready"}}), kClients - 3},
                                 {"flux_connections", r0({{"state", "closing"}}), 0}});
  }));
}

// HELLO, M data frames, two pings and an unknown command: every frame in and
// out is counted exactly once, with its header, and only echoes are timed.
TEST_F(MetricsEndpointTest, FrameCountersMoveByExactlyWhatWasSent) {
  constexpr size_t kEchoes = 500;
  // Deltas from before the client came (a fresh gateway: zeros, but the
  // test does not rely on that).
  auto before = checked_scrape(*http_);
  ASSERT_TRUE(before);
  auto base = [&](const std::string& name, const Labels& labels = r0()) {
    return before->value(name, labels).value_or(0);
  };
  TestClient& client = new_client();
  ASSERT_TRUE(client.connect(gateway_.port()));
  std::string session_id;
  ASSERT_TRUE(client.handshake(after(kPromptWait), &session_id));
  size_t frames = 1;  // in and out alike: every request here gets one answer
  size_t bytes_in = frame_bytes("FLUX_HELLO");
  size_t bytes_out = frame_bytes("FLUX_READY " + session_id + " 0");

  std::vector<std::string> payloads;
  for (size_t i = 0; i < kEchoes; ++i) payloads.push_back(make_payload(i, 1 + i % 300));
  ASSERT_TRUE(client.echo_stream(payloads, after(seconds(20))));
  for (const auto& p : payloads) bytes_in += frame_bytes(p), bytes_out += frame_bytes(p);
  frames += kEchoes;

  const std::vector<std::pair<std::string, std::string>> controls = {
      {"FLUX_PING", "FLUX_PONG"},
      {"FLUX_PING tok-42", "FLUX_PONG tok-42"},
      {"FLUX_WHAT", "FLUX_ERROR unknown-command"}};
  for (const auto& [request, answer] : controls) {
    ASSERT_TRUE(client.send_frame(request));
    ASSERT_TRUE(client.expect_frame(answer));
    bytes_in += frame_bytes(request), bytes_out += frame_bytes(answer), ++frames;
  }

  EXPECT_TRUE(eventually(after(kPromptWait), [&] {
    return scrape_shows(
        *http_,
        {{"flux_frames_received_total", r0(), base("flux_frames_received_total") + double(frames)},
         {"flux_frames_sent_total", r0(), base("flux_frames_sent_total") + double(frames)},
         {"flux_received_bytes_total", r0(), base("flux_received_bytes_total") + double(bytes_in)},
         {"flux_sent_bytes_total", r0(), base("flux_sent_bytes_total") + double(bytes_out)},
         {"flux_echo_latency_seconds_count", r0(),
          base("flux_echo_latency_seconds_count") + double(kEchoes)},
         {"flux_protocol_errors_total", r0({{"code", "unknown-command"}}),
          base("flux_protocol_errors_total", r0({{"code", "unknown-command"}})) + 1},
         {"flux_output_queued_bytes", r0(), 0}});
  }));
  auto stats = checked_stats(*http_);
  ASSERT_TRUE(stats);
  const json& traffic = (*stats)["total"]["traffic"];
  EXPECT_EQ(traffic["frames_in_total"].get<double>(),
            base("flux_frames_received_total") + double(frames));
  EXPECT_EQ(traffic["frames_out_total"].get<double>(),
            base("flux_frames_sent_total") + double(frames));
  EXPECT_EQ(traffic["bytes_in_total"].get<double>(),
            base("flux_received_bytes_total") + double(bytes_in));
  EXPECT_EQ(traffic["bytes_out_total"].get<double>(),
            base("flux_sent_bytes_total") + double(bytes_out));
  EXPECT_EQ((*stats)["total"]["latency_seconds"]["echo_latency"]["count"].get<double>(),
            base("flux_echo_latency_seconds_count") + double(kEchoes));
  // Echo latency on loopback: positive, and well under a second each.
  const double echo_sum = (*stats)["total"]["latency_seconds"]["echo_latency"]["sum"].get<double>();
  EXPECT_GT(echo_sum, 0.0);
  EXPECT_LT(echo_sum, double(kEchoes) * 1.0);

  // The connection's own row agrees.
  auto listing = checked_body(*http_, "/connections?sort=bytes_in");
  ASSERT_TRUE(listing);
  const json rows = json::parse(*listing)["connections"];
  ASSERT_EQ(rows.size(), 1u) << *listing;
  EXPECT_EQ(rows[0]["frames_in"], frames);
  EXPECT_EQ(rows[0]["frames_out"], frames);
  EXPECT_EQ(rows[0]["bytes_in"], bytes_in);
  EXPECT_EQ(rows[0]["bytes_out"], bytes_out);
  EXPECT_EQ(rows[0]["state"], "ready");
}

// Five ways to end a connection, each counted under its own reason.
TEST_F(MetricsEndpointTest, ClosedConnectionsAreCountedByReason) {
  for (int i = 0; i < 2; ++i) {  // FLUX_BYE, twice
    TestClient bye;
    ASSERT_TRUE(bye.connect(gateway_.port()));
    ASSERT_TRUE(bye.handshake());
    ASSERT_TRUE(bye.send_frame("FLUX_BYE"));
    ASSERT_TRUE(bye.expect_frame("FLUX_BYE"));
    ASSERT_TRUE(bye.expect_closed());
  }
  {  // RST: SO_LINGER 0
    TestClient rst;
    ASSERT_TRUE(rst.connect(gateway_.port()));
    ASSERT_TRUE(rst.handshake());
    rst.reset();
  }
  {  // a first frame that is not a handshake
    TestClient bad;
    ASSERT_TRUE(bad.connect(gateway_.port()));
    ASSERT_TRUE(bad.send_frame("hello"));
    ASSERT_TRUE(bad.expect_frame("FLUX_ERROR handshake-expected"));
    ASSERT_TRUE(bad.expect_closed());
  }
  {  // EOF: a plain close
    TestClient eof;
    ASSERT_TRUE(eof.connect(gateway_.port()));
    ASSERT_TRUE(eof.handshake());
    eof.close();
  }

  Expected expected = {{"flux_connections_accepted_total", r0(), 5}};
  const std::map<std::string, double> reasons = {{"bye", 2},
                                                 {"reset", 1},
                                                 {"protocol-error", 1},
                                                 {"eof", 1},
                                                 {"handshake-timeout", 0},
                                                 {"idle-timeout", 0},
                                                 {"server-full", 0},
                                                 {"shutdown", 0},
                                                 {"taken-over", 0}};
  for (const auto& [reason, n] : reasons)
    expected.emplace_back("flux_connections_closed_total", r0({{"reason", reason}}), n);
  for (const char* code : {"handshake-expected", "handshake-timeout", "unsupported-version",
                           "frame-too-large", "idle-timeout", "unknown-command", "already-ready",
                           "server-full", "server-shutdown", "session-taken-over"})
    expected.emplace_back("flux_protocol_errors_total", r0({{"code", code}}),
                          std::string(code) == "handshake-expected" ? 1 : 0);
  for (const char* state : {"connecting", "handshake", "ready", "closing"})
    expected.emplace_back("flux_connections", r0({{"state", state}}), 0);
  // Sessions: four HELLOs; the BYE ones are discarded, EOF and RST keep theirs.
  expected.emplace_back("flux_sessions_created_total", r0(), 4);
  expected.emplace_back("flux_sessions", r0({{"state", "detached"}}), 2);
  expected.emplace_back("flux_sessions", r0({{"state", "attached"}}), 0);
  EXPECT_TRUE(eventually(after(kPromptWait), [&] { return scrape_shows(*http_, expected); }));

  auto stats = checked_stats(*http_);
  ASSERT_TRUE(stats);
  const json& closed = (*stats)["total"]["connections"]["closed_total"];
  for (const auto& [reason, n] : reasons) EXPECT_EQ(closed[reason], n) << reason;
  EXPECT_EQ((*stats)["total"]["traffic"]["protocol_errors_total"]["handshake-expected"], 1);
  EXPECT_EQ((*stats)["total"]["connections"]["open"], 0);
}

// /connections: the busiest first, as many as asked, and never a session id.
TEST_F(MetricsEndpointTest, ConnectionsListingSortsLimitsAndHidesSessionIds) {
  constexpr size_t kClients = 5, kPayload = 1000;
  std::vector<std::string> session_ids(kClients);
  std::vector<size_t> bytes_in(kClients);
  for (size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(ready_client(&session_ids[i]));
    TestClient& c = clients_.back();
    bytes_in[i] = frame_bytes("FLUX_HELLO");
    // Client i sends a different amount: its rank in bytes_in is known.
    for (size_t k = 0; k <= (i * 3) % kClients; ++k) {
      const std::string payload = make_payload(i * 100 + k, kPayload);
      ASSERT_TRUE(c.send_frame(payload));
      ASSERT_TRUE(c.expect_frame(payload));
      bytes_in[i] += frame_bytes(payload);
    }
  }
  std::vector<size_t> order(kClients);  // client indexes, most bytes_in first
  for (size_t i = 0; i < kClients; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return bytes_in[a] > bytes_in[b]; });

  auto body = checked_body(*http_, "/connections?limit=3&sort=bytes_in");
  ASSERT_TRUE(body);
  const json listing = json::parse(*body);
  EXPECT_EQ(listing["total"], kClients);
  EXPECT_EQ(listing["sort"], "bytes_in");
  const json& rows = listing["connections"];
  ASSERT_EQ(rows.size(), 3u) << *body;
  for (size_t k = 0; k < 3; ++k) {
    SCOPED_TRACE("row " + std::to_string(k));
    const TestClient& expected_client = clients_[order[k]];
    EXPECT_EQ(rows[k]["bytes_in"], bytes_in[order[k]]);
    EXPECT_EQ(rows[k]["peer"], "127.0.0.1:" + std::to_string(local_port(expected_client)));
    EXPECT_EQ(rows[k]["reactor"], "0");
    EXPECT_EQ(rows[k]["state"], "ready");
    EXPECT_GE(rows[k]["age_seconds"].get<double>(), 0.0);
    EXPECT_EQ(rows[k]["bytes_pending"], 0u);
    if (k > 0) {
      EXPECT_GE(rows[k - 1]["bytes_in"], rows[k]["bytes_in"]) << "not sorted descending";
    }
  }
  // The session id is the only credential for resuming: never listed.
  EXPECT_FALSE(std::regex_search(*body, std::regex("[0-9a-fA-F]{32}"))) << *body;
  for (const auto& id : session_ids) EXPECT_EQ(body->find(id), std::string::npos);

  // Every sort key is accepted and sorts descending; the oldest comes first by age.
  for (const char* key : {"pending", "age", "bytes_in", "bytes_out"}) {
    auto all = checked_body(*http_, std::string("/connections?sort=") + key);
    ASSERT_TRUE(all) << key;
    const json list = json::parse(*all)["connections"];
    ASSERT_EQ(list.size(), kClients) << key;
    const std::string field = std::string(key) == "pending" ? "bytes_pending"
                              : std::string(key) == "age"   ? "age_seconds"
                                                            : key;
    for (size_t k = 1; k < list.size(); ++k)
      EXPECT_GE(list[k - 1][field].get<double>(), list[k][field].get<double>())
          << key << " row " << k;
    EXPECT_FALSE(std::regex_search(*all, std::regex("[0-9a-fA-F]{32}"))) << *all;
  }
  auto by_age = json::parse(*checked_body(*http_, "/connections?sort=age"))["connections"];
  EXPECT_EQ(by_age[0]["peer"], "127.0.0.1:" + std::to_string(local_port(clients_[0])));
  auto none = checked_body(*http_, "/connections?limit=0");
  ASSERT_TRUE(none);
  EXPECT_TRUE(json::parse(*none)["connections"].empty());

  for (const char* bad : {"/connections?sort=session", "/connections?sort=",
                          "/connections?limit=abc", "/connections?limit=-1"}) {
    auto res = http_->get(bad);
    ASSERT_TRUE(res) << bad;
    EXPECT_EQ(res->status, 400) << bad << ": " << res->body;
  }
}

TEST_F(MetricsEndpointTest, EndpointsAnswerAsDocumented) {
  auto health = http_->get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");

  auto missing = http_->get("/no-such-page");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // Read-only: nothing but GET is served.
  for (const char* path : {"/metrics", "/stats", "/connections", "/healthz", "/"}) {
    auto post = http_->post(path);
    ASSERT_TRUE(post) << path;
    EXPECT_NE(post->status, 200) << "POST " << path;
    EXPECT_GE(post->status, 400) << "POST " << path;
  }

  auto page = http_->get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_TRUE(page->get_header_value("Content-Type").starts_with("text/html"))
      << page->get_header_value("Content-Type");
  EXPECT_NE(page->body.find("uPlot"), std::string::npos)
      << "the dashboard page does not load uPlot";

  auto metrics = http_->get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  const std::string type = metrics->get_header_value("Content-Type");
  EXPECT_TRUE(type.starts_with("text/plain")) << type;
  EXPECT_NE(type.find("version=0.0.4"), std::string::npos) << type;

  auto compact = checked_body(*http_, "/stats");
  auto pretty = checked_body(*http_, "/stats?pretty=1");
  ASSERT_TRUE(compact && pretty);
  EXPECT_EQ(compact->find('\n'), std::string::npos) << "/stats is indented without ?pretty=1";
  EXPECT_TRUE(pretty->starts_with("{\n  \"")) << pretty->substr(0, 40);
  const json a = json::parse(*compact), b = json::parse(*pretty);
  ASSERT_TRUE(a.is_object() && b.is_object());
  std::vector<std::string> keys_a, keys_b;
  for (auto& [k, v] : a.items()) keys_a.push_back(k);
  for (auto& [k, v] : b.items()) keys_b.push_back(k);
  EXPECT_EQ(keys_a, keys_b);
  auto stats_res = http_->get("/stats");
  ASSERT_TRUE(stats_res);
  EXPECT_TRUE(stats_res->get_header_value("Content-Type").starts_with("application/json"));
}

// The loop's own figures, by invariants: it keeps turning when idle (the
// 100 ms tick), busy + poll time never exceeds the wall time it ran and
// covers most of it, and the lag histogram gets one sample per tick.
TEST_F(MetricsEndpointTest, LoopMetricsArePlausible) {
  auto first = checked_scrape(*http_);
  ASSERT_TRUE(first);
  const double iterations_1 = first->value("flux_loop_iterations_total", r0()).value_or(-1);
  ASSERT_GE(iterations_1, 0);
  ASSERT_TRUE(ready_client());  // some work for the loop, too

  // The invariants below are about elapsed time: let 1.6 s pass.
  std::this_thread::sleep_until(started_before_ + milliseconds(1600));
  const auto scrape_begin = Clock::now();
  auto second = checked_scrape(*http_);
  const auto scrape_end = Clock::now();
  ASSERT_TRUE(second);
  auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const double ran_at_most = secs(scrape_end - started_before_);
  const double ran_at_least = secs(scrape_begin - started_after_);

  const double iterations_2 = second->value("flux_loop_iterations_total", r0()).value_or(-1);
  EXPECT_GT(iterations_2, iterations_1) << "the loop did not turn";
  const double busy = second->value("flux_loop_busy_seconds_total", r0()).value_or(-1);
  const double poll = second->value("flux_loop_poll_wait_seconds_total", r0()).value_or(-1);
  EXPECT_GE(busy, 0);
  EXPECT_GE(poll, 0);
  EXPECT_LE(busy + poll, ran_at_most + 0.05) << "busy " << busy << " + poll " << poll;
  EXPECT_GE(busy + poll, 0.5 * ran_at_least) << "busy " << busy << " + poll " << poll;
  EXPECT_LT(busy, poll) << "an idle gateway's loop should mostly wait";

  const double lag_count = second->value("flux_loop_lag_seconds_count", r0()).value_or(-1);
  EXPECT_GE(lag_count, 5) << "after " << ran_at_least
                          << " s, a 100 ms tick fired fewer than 5 times";
  EXPECT_LE(lag_count, ran_at_most / 0.1 + 1) << "the 100 ms tick fired too often";

  // Per-iteration histograms are fed with the totals: same count (give or
  // take an iteration between the two reads), same time.
  const double poll_count = second->value("flux_loop_poll_wait_seconds_count", r0()).value_or(-1);
  const double busy_count = second->value("flux_loop_busy_seconds_count", r0()).value_or(-1);
  EXPECT_NEAR(poll_count, iterations_2, 2);
  EXPECT_NEAR(busy_count, iterations_2, 2);
  EXPECT_NEAR(second->value("flux_loop_poll_wait_seconds_sum", r0()).value_or(-1), poll, 0.25);
  EXPECT_NEAR(second->value("flux_loop_busy_seconds_sum", r0()).value_or(-1), busy, 0.25);

  // /stats: the same loop time is within its own uptime, and the loop turned lately.
  const auto stats_begin = Clock::now();
  auto stats = checked_stats(*http_);
  ASSERT_TRUE(stats);
  const json& loop = (*stats)["total"]["loop"];
  const double uptime = (*stats)["uptime_seconds"].get<double>();
  EXPECT_LE(loop["busy_seconds_total"].get<double>() + loop["poll_seconds_total"].get<double>(),
            uptime + 0.05)
      << loop.dump() << " uptime " << uptime;
  // Uptime counts from the metrics server's start, after the process began
  // (a sanitized binary takes a while to get there) and before it printed
  // its listening line.
  EXPECT_GE(uptime, secs(stats_begin - started_after_) - 0.05);
  EXPECT_LE(uptime, secs(Clock::now() - started_before_) + 0.05);
  EXPECT_LT(loop["last_turn_age_seconds"].get<double>(), 1.0) << loop.dump();
  EXPECT_GE((*stats)["total"]["latency_seconds"]["loop_lag"]["count"].get<double>(), lag_count);
  auto health = http_->get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
}

// The hot path does not allocate: a second batch of echoes identical to a
// first one (after which the pools are warm) grows no pool. Frames go in
// windows of 10, so the depth of every queue is the same in both batches.
TEST_F(MetricsEndpointTest, SecondIdenticalBatchAllocatesNoBuffers) {
  constexpr size_t kWindows = 50, kWindow = 10, kPayload = 1000;
  ASSERT_TRUE(ready_client());
  TestClient& client = clients_.back();
  auto batch = [&](size_t first_seed) -> ::testing::AssertionResult {
    for (size_t w = 0; w < kWindows; ++w) {
      std::vector<std::string> payloads;
      for (size_t i = 0; i < kWindow; ++i)
        payloads.push_back(make_payload(first_seed + w * kWindow + i, kPayload));
      if (auto sent = client.send_raw(encode_frames(payloads)); !sent) return sent;
      for (const auto& p : payloads)
        if (auto echoed = client.expect_frame(p); !echoed) return echoed;
    }
    return ::testing::AssertionSuccess();
  };
  struct Pools {
    double allocations = -1, acquires = -1, pool_bytes = -1;
  };
  auto pools_after = [&](size_t echoes) -> Pools {
    Pools p;
    EXPECT_TRUE(eventually(after(kPromptWait), [&] {
      return scrape_shows(*http_, {{"flux_echo_latency_seconds_count", r0(), double(echoes)}});
    }));
    auto e = checked_scrape(*http_);
    if (!e) return p;
    p.allocations = e->sum("flux_buffer_allocations_total", r0()).value_or(-1);
    p.acquires = e->value("flux_buffer_acquires_total", r0()).value_or(-1);
    p.pool_bytes = e->value("flux_buffer_pool_in_use_bytes", r0()).value_or(-1) +
                   e->value("flux_buffer_pool_free_bytes", r0()).value_or(-1);
    return p;
  };
  const Pools warm_up = pools_after(0);
  ASSERT_TRUE(batch(0));
  const Pools first = pools_after(kWindows * kWindow);
  ASSERT_TRUE(batch(0));
  const Pools second = pools_after(2 * kWindows * kWindow);

  EXPECT_GT(first.acquires, warm_up.acquires) << "echoes took no buffer at all?";
  EXPECT_GT(second.acquires, first.acquires);
  EXPECT_EQ(second.allocations, first.allocations)
      << "the second identical batch grew the pools (first batch grew them by "
      << first.allocations - warm_up.allocations << ")";
  // "The pool only ever grows": the bytes it holds (lent out + free) never shrink.
  EXPECT_GE(first.pool_bytes, warm_up.pool_bytes);
  EXPECT_GE(second.pool_bytes, first.pool_bytes);
  auto stats = checked_stats(*http_);
  ASSERT_TRUE(stats);
  const json& pool = (*stats)["total"]["pool"];
  EXPECT_EQ(pool["block_allocations_total"].get<double>() +
                pool["frame_node_allocations_total"].get<double>(),
            second.allocations);
}

// A gateway whose detached sessions expire quickly.
class PoolGaugeTest : public MetricsEndpointTest {
 protected:
  std::vector<std::string> gateway_args() const override {
    return {"--linger", "1s", "--resume-window", "300ms"};
  }
};

// flux_buffer_pool_{in_use,free}_bytes: the pools only ever grow (BufferPool),
// so the bytes they hold, lent out plus free, never shrink, and are not zero
// once blocks have been allocated. Checked at start, after echoes (replay
// blocks taken) and after the session expired (replay blocks given back).
TEST_F(PoolGaugeTest, PoolGaugesAccountForEveryPooledBlockAndNeverShrink) {
  struct Pools {
    double block_allocations = -1, bytes = -1;
    std::string text;
  };
  auto pools = [&]() -> Pools {
    Pools p;
    auto e = checked_scrape(*http_);
    if (!e) return p;
    const double in_use = e->value("flux_buffer_pool_in_use_bytes", r0()).value_or(-1);
    const double free = e->value("flux_buffer_pool_free_bytes", r0()).value_or(-1);
    p.block_allocations =
        e->value("flux_buffer_allocations_total", r0({{"pool", "block"}})).value_or(-1);
    p.bytes = in_use + free;
    p.text = "in_use " + std::to_string(in_use) + " + free " + std::to_string(free) + " bytes, " +
             std::to_string(p.block_allocations) + " block allocations";
    return p;
  };
  const Pools at_start = pools();
  EXPECT_GT(at_start.block_allocations, 0) << "no preallocated blocks? " << at_start.text;
  EXPECT_GT(at_start.bytes, 0) << "blocks were allocated, the pool gauges hold none: "
                               << at_start.text;

  Pools after_echoes;
  {
    TestClient client;
    ASSERT_TRUE(client.connect(gateway_.port()));
    ASSERT_TRUE(client.handshake());
    for (uint64_t i = 0; i < 100; ++i) {
      const std::string payload = make_payload(i, 1000);
      ASSERT_TRUE(client.send_frame(payload));
      ASSERT_TRUE(client.expect_frame(payload));
    }
    after_echoes = pools();
    EXPECT_GE(after_echoes.bytes, at_start.bytes)
        << "start: " << at_start.text << "; after echoes: " << after_echoes.text;
  }  // EOF: the session is detached, then expires and frees its replay blocks
  EXPECT_TRUE(eventually(after(kPromptWait), [&] {
    return scrape_shows(*http_, {{"flux_sessions_expired_total", r0(), 1},
                                 {"flux_sessions", r0({{"state", "detached"}}), 0},
                                 {"flux_replay_memory_bytes", r0(), 0}});
  }));
  const Pools after_expiry = pools();
  EXPECT_GE(after_expiry.bytes, after_echoes.bytes)
      << "after echoes: " << after_echoes.text << "; after expiry: " << after_expiry.text;
}

}  // namespace
}  // namespace flux::itest
