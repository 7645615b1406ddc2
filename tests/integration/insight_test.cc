// What the gateway says about its loop and its connections, black-box
// (docs/stats.md, "The loop's activity" and "/connections"): the real
// binary, real loopback TCP.
//
//   - /connections' TCP_INFO rtt of a connection agrees with what `ss -ti`
//     prints for the same socket (same order of magnitude, > 0), and its
//     seq, state and idle time are what the client did;
//   - state=, min_pending=, sort= return what they say; a page walk returns
//     every connection exactly once; bad values get 400 and a reason;
//   - a non-reading client is found by min_pending and its paused time grows;
//   - --stall-threshold 1ms under load produces stall records naming read or
//     write and connections that exist, each logged (loop-stall).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kExitWait{10};

uint16_t local_port(const TestClient& client) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockname(client.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

std::string peer_of(const TestClient& client) {
  return "127.0.0.1:" + std::to_string(local_port(client));
}

// Polls `probe` every 20 ms until it holds or `deadline`.
bool eventually(Deadline deadline, const std::function<bool()>& probe) {
  for (;;) {
    if (probe()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// What `ss -ti` says of the gateway's socket of this connection: its rtt in
// seconds (0 if ss printed none).
double ss_rtt_seconds(uint16_t gateway_port, uint16_t client_port) {
  const std::string command =
      "ss -tinH state established '( sport = :" + std::to_string(gateway_port) +
      " and dport = :" + std::to_string(client_port) + " )' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return 0;
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  pclose(pipe);
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(\brtt:([0-9.]+)/([0-9.]+))"))) return 0;
  return std::stod(m[1]) / 1e3;  // ss prints milliseconds
}

class InsightEndpoints : public ::testing::Test {
 protected:
  void start(std::vector<std::string> args) {
    ASSERT_TRUE(gateway_.start(args));
    http_ = std::make_unique<MetricsHttp>(gateway_.metrics_port());
  }
  void TearDown() override {
    clients_.clear();
    http_.reset();
    if (gateway_.pid() < 0) return;
    EXPECT_TRUE(gateway_.stop_cleanly(kExitWait));
  }
  TestClient& ready_client() {
    clients_.emplace_back();
    TestClient& c = clients_.back();
    EXPECT_TRUE(c.connect(gateway_.port()));
    EXPECT_TRUE(c.handshake(after(kPromptWait)));
    return c;
  }
  json listing(const std::string& query) {
    std::string why;
    auto body = http_->get_json("/connections" + query, &why);
    if (!body) {
      ADD_FAILURE() << query << ": " << why;
      return json::object({{"connections", json::array()}, {"total", 0}});
    }
    return *body;
  }
  // The row of `client` in an unfiltered listing (null if absent).
  json row_of(const TestClient& client, const std::string& query = "?limit=10000") {
    const json body = listing(query);
    for (const json& row : body["connections"])
      if (row["peer"] == peer_of(client)) return row;
    return nullptr;
  }
  void echo(TestClient& c, size_t frames, size_t size = 100) {
    for (size_t i = 0; i < frames; ++i) {
      const std::string payload(size, char('a' + i % 26));
      ASSERT_TRUE(c.send_frame(payload));
      ASSERT_TRUE(c.expect_frame(payload));
    }
  }

  GatewayProcess gateway_;
  std::unique_ptr<MetricsHttp> http_;
  std::deque<TestClient> clients_;
};

TEST_F(InsightEndpoints, ConnectionRowsCarryTcpInfoAgreeingWithSs) {
  start({"--linger", "1s"});
  TestClient& c = ready_client();
  echo(c, 20);
  // The last echo's ACK may still move the rtt: ss before and after the row.
  const double ss_before = ss_rtt_seconds(gateway_.port(), local_port(c));
  const json row = row_of(c);
  ASSERT_FALSE(row.is_null());
  const double ss_after = ss_rtt_seconds(gateway_.port(), local_port(c));
  const double ss_rtt = std::max(ss_before, ss_after);
  const double ss_low = std::min(ss_before, ss_after);
  EXPECT_EQ(row["state"], "ready");
  EXPECT_EQ(row["seq"], 20);
  EXPECT_EQ(row["frames_in"], 21);  // HELLO and 20 data frames
  EXPECT_GE(row["idle_seconds"].get<double>(), 0.0);
  EXPECT_LE(row["idle_seconds"].get<double>(), row["age_seconds"].get<double>());
  EXPECT_EQ(row["paused_seconds"], 0.0);
  ASSERT_TRUE(row["tcp"].is_object()) << row.dump();
  const json& tcp = row["tcp"];
  const double rtt = tcp["rtt_seconds"].get<double>();
  std::printf(
      "connection %s: rtt %.6f s (ss -ti: %.6f s), rttvar %.6f s, cwnd %llu, "
      "delivery rate %s B/s\n",
      row["peer"].get<std::string>().c_str(), rtt, ss_rtt, tcp["rttvar_seconds"].get<double>(),
      tcp["cwnd"].get<unsigned long long>(), tcp["delivery_rate_bytes_per_second"].dump().c_str());
  EXPECT_GT(rtt, 0.0);
  ASSERT_GT(ss_low, 0.0) << "ss -ti printed no rtt for the gateway's socket";
  EXPECT_LT(rtt, ss_rtt * 10);  // the same order of magnitude
  EXPECT_GT(rtt, ss_low / 10);
  EXPECT_GT(tcp["cwnd"].get<uint64_t>(), 0u);
  EXPECT_EQ(tcp["retransmits"], 0);
  EXPECT_TRUE(tcp.contains("unacked"));
  EXPECT_TRUE(tcp.contains("delivery_rate_bytes_per_second"));

  // Idle: after the client goes quiet, idle_seconds grows and age with it.
  const double idle_before = row["idle_seconds"].get<double>();
  EXPECT_TRUE(eventually(after(seconds(5)), [&] {
    const json later = row_of(c);
    return !later.is_null() && later["idle_seconds"].get<double>() >= idle_before + 0.1;
  }));
}

TEST_F(InsightEndpoints, StateSortAndPagesReturnWhatTheySay) {
  start({"--linger", "1s"});
  constexpr size_t kReady = 4, kWaiting = 3;
  for (size_t i = 0; i < kReady; ++i) echo(ready_client(), i + 1);  // distinct frames_in
  for (size_t i = 0; i < kWaiting; ++i) {
    clients_.emplace_back();
    ASSERT_TRUE(clients_.back().connect(gateway_.port()));  // no HELLO: handshake
  }
  ASSERT_TRUE(eventually(after(kPromptWait),
                         [&] { return listing("?state=handshake")["total"] == kWaiting; }));

  const json ready = listing("?state=ready");
  EXPECT_EQ(ready["total"], kReady);
  EXPECT_EQ(ready["open"], kReady + kWaiting);
  EXPECT_EQ(ready["state"], "ready");
  for (const json& row : ready["connections"]) EXPECT_EQ(row["state"], "ready");
  const json waiting = listing("?state=handshake");
  for (const json& row : waiting["connections"]) EXPECT_EQ(row["state"], "handshake");
  EXPECT_EQ(listing("?state=closing")["total"], 0);

  // Descending by the key.
  for (const char* key : {"frames_in", "seq", "bytes_in", "age", "idle", "rtt"}) {
    SCOPED_TRACE(key);
    const json rows = listing(std::string("?sort=") + key).at("connections");
    ASSERT_EQ(rows.size(), kReady + kWaiting);
    auto figure = [&](const json& row) -> double {
      const std::string k = key;
      if (k == "age") return row["age_seconds"];
      if (k == "idle") return row["idle_seconds"];
      if (k == "rtt") return row["tcp"]["rtt_seconds"];
      return row[k];
    };
    if (std::string(key) == "idle" || std::string(key) == "age") continue;  // moving figures
    for (size_t k = 1; k < rows.size(); ++k) {
      EXPECT_GE(figure(rows[k - 1]), figure(rows[k]));
    }
  }
  const json by_frames = listing("?sort=frames_in").at("connections");
  EXPECT_EQ(by_frames[0]["frames_in"], kReady + 1);  // HELLO and kReady data frames
  EXPECT_EQ(by_frames[0]["seq"], kReady);

  // A page walk, a page at a time, returns every connection exactly once.
  for (size_t page = 1; page <= 3; ++page) {
    SCOPED_TRACE("page size " + std::to_string(page));
    std::map<std::string, int> seen;
    for (size_t offset = 0;; offset += page) {
      const json body = listing("?sort=frames_in&limit=" + std::to_string(page) +
                                "&offset=" + std::to_string(offset));
      EXPECT_EQ(body["offset"], offset);
      EXPECT_EQ(body["total"], kReady + kWaiting);
      if (body["connections"].empty()) break;
      EXPECT_LE(body["connections"].size(), page);
      for (const json& row : body["connections"])
        ++seen[row["reactor"].get<std::string>() + "/" + std::to_string(row["id"].get<int>())];
      ASSERT_LT(offset, 100u);
    }
    EXPECT_EQ(seen.size(), kReady + kWaiting);
    for (const auto& [id, times] : seen) EXPECT_EQ(times, 1) << id;
  }
  EXPECT_TRUE(listing("?offset=1000")["connections"].empty());

  // Bad values: 400, and the reason names the parameter.
  for (const auto& [query, name] : std::vector<std::pair<std::string, std::string>>{
           {"?state=open", "state"},
           {"?state=", "state"},
           {"?sort=rank", "sort"},
           {"?sort=", "sort"},
           {"?offset=-1", "offset"},
           {"?offset=x", "offset"},
           {"?limit=1e3", "limit"},
           {"?min_pending=lots", "min_pending"},
       }) {
    auto res = http_->get("/connections" + query);
    ASSERT_TRUE(res) << query;
    EXPECT_EQ(res->status, 400) << query << ": " << res->body;
    EXPECT_EQ(res->body.rfind(name + ":", 0), 0u) << query << ": " << res->body;
  }
}

TEST_F(InsightEndpoints, ANonReaderIsFoundByMinPendingAndItsPausedTimeGrows) {
  start({"--linger", "1s", "--max-pending", "65536", "--write-timeout", "0"});
  echo(ready_client(), 3);
  clients_.emplace_back();
  TestClient& reader = clients_.back();
  reader.set_buffer_sizes(16 * 1024, 0);
  ASSERT_TRUE(reader.connect(gateway_.port()));
  ASSERT_TRUE(reader.handshake(after(kPromptWait)));
  std::string stream;
  // More than the kernel's buffers on both sides can hold (loopback
  // autotuning lets the gateway's send buffer reach 4 MiB).
  for (int i = 0; i < 4000; ++i) {
    const std::string payload(8000, 'p');
    const uint32_t n = uint32_t(payload.size());
    stream += {char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
    stream += payload;
  }
  reader.send_until_stalled(stream, seconds(1), after(seconds(20)));

  json row;
  ASSERT_TRUE(eventually(after(kPromptWait), [&] {
    const json body = listing("?min_pending=1");
    if (body["total"] != 1) return false;
    row = body["connections"][0];
    return row["paused_seconds"].get<double>() > 0.0;
  })) << row.dump();
  EXPECT_EQ(row["peer"], peer_of(reader));
  EXPECT_GT(row["bytes_pending"].get<uint64_t>(), 0u);
  EXPECT_EQ(
      listing("?min_pending=" + std::to_string(row["bytes_pending"].get<uint64_t>() + 1))["total"],
      0);
  const double paused = row["paused_seconds"].get<double>();
  EXPECT_TRUE(eventually(after(seconds(5)), [&] {
    const json later = row_of(reader);
    return !later.is_null() && later["paused_seconds"].get<double>() >= paused + 0.1;
  }));
}

TEST_F(InsightEndpoints, StallsUnderLoadNameReadOrWriteAndRealConnections) {
  start({"--linger", "1s", "--stall-threshold", "1ms"});
  constexpr size_t kClients = 16;
  for (size_t i = 0; i < kClients; ++i) ready_client();
  std::set<std::string> peers, ids;
  const json all = listing("?limit=10000");
  for (const json& row : all["connections"]) {
    peers.insert(row["peer"].get<std::string>());
    ids.insert(row["reactor"].get<std::string>() + "/" + std::to_string(row["id"].get<int>()));
  }
  ASSERT_EQ(ids.size(), kClients);

  // Load: every client sends 32 frames of 32 KiB at once and reads its
  // echoes, round after round, until a stall names connection work.
  const std::string payload(32 * 1024, 'L');
  json found;
  const bool stalled = eventually(after(seconds(60)), [&] {
    for (TestClient& c : clients_)
      for (int k = 0; k < 32; ++k) EXPECT_TRUE(c.send_frame(payload));
    for (TestClient& c : clients_)
      for (int k = 0; k < 32; ++k) EXPECT_TRUE(c.expect_frame(payload));
    std::string why;
    auto body = http_->get_json("/stalls", &why);
    if (!body) return false;
    EXPECT_EQ((*body)["threshold_seconds"], 0.001);
    for (const json& s : (*body)["stalls"]) {
      const std::string activity = s["activity"];
      if ((activity == "read" || activity == "write") && !s["ongoing"].get<bool>() &&
          s["peer"] != "") {
        found = s;
        return true;
      }
    }
    return false;
  });
  ASSERT_TRUE(stalled) << "no stall naming read or write under load";
  std::printf("a stall record, as served: %s\n", found.dump().c_str());
  const std::string id =
      found["reactor"].get<std::string>() + "/" + std::to_string(found["connection"].get<int>());
  EXPECT_TRUE(ids.count(id)) << id << " is not one of the test's connections";
  EXPECT_TRUE(peers.count(found["peer"].get<std::string>())) << found.dump();
  EXPECT_GE(found["duration_seconds"].get<double>(), 0.001);
  EXPECT_GT(found["start_unix_seconds"].get<double>(), 1.6e9);
  // Logged, once per stall: the log names the same connection.
  EXPECT_TRUE(eventually(after(kPromptWait), [&] {
    return gateway_.stderr_text().find("loop stall: reactor " +
                                       found["reactor"].get<std::string>()) != std::string::npos;
  })) << gateway_.stderr_text();
}

}  // namespace
}  // namespace flux::itest
