// Several reactors in one gateway (--reactors 4): connections spread over
// them, a session resumed on another reactor than its own moves there and
// replays exactly what was missed, and the metrics show every reactor.
//
// Which reactor serves a connection is read from GET /connections (the row
// whose peer port is the client's local port), so the test can go on
// connecting until a connection lands where it needs one.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/deadline.h"
#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using nlohmann::json;

uint16_t local_port(const TestClient& client) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  getsockname(client.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

class MultiReactorTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> flags() const { return {"--reactors", "4"}; }

  void SetUp() override {
    ASSERT_TRUE(gateway_.start(flags()));
    http_ = std::make_unique<MetricsHttp>(gateway_.metrics_port());
  }

  std::optional<json> get_json(const std::string& path) { return http_->get_json(path); }

  // The reactor serving this client, as the gateway lists it (bounded wait:
  // a just-accepted connection shows up at the reactor's next turn).
  std::optional<std::string> reactor_of(const TestClient& client) {
    std::string suffix = std::to_string(local_port(client));
    suffix.insert(suffix.begin(), ':');  // (not ":" + ...: GCC 12 warns a false -Wrestrict)
    const Deadline deadline = after(kPromptWait);
    while (Clock::now() < deadline) {
      if (auto listing = get_json("/connections?limit=10000"))
        for (const json& row : (*listing)["connections"])
          if (row["peer"].get<std::string>().ends_with(suffix))
            return row["reactor"].get<std::string>();
    }
    return std::nullopt;
  }

  // A handshaken client and the reactor that holds its session.
  std::pair<std::string, std::string> open_session(TestClient& client) {
    std::string id;
    EXPECT_TRUE(client.connect(gateway_.port()));
    EXPECT_TRUE(client.handshake(after(kPromptWait), &id));
    return {id, reactor_of(client).value_or("?")};
  }

  // Like open_session(), on a reactor other than `avoid` (64 tries; the
  // caller asserts that the reactors differ).
  std::pair<std::string, std::string> open_session_elsewhere(TestClient& client,
                                                             const std::string& avoid) {
    std::pair<std::string, std::string> session;
    for (int attempt = 0; attempt < 64 && (session.second.empty() || session.second == avoid);
         ++attempt) {
      client = TestClient{};
      session = open_session(client);
    }
    return session;
  }

  // A connection (not yet handshaken) served by a reactor other than `avoid`.
  TestClient connect_elsewhere(const std::string& avoid) {
    for (int attempt = 0; attempt < 64; ++attempt) {
      TestClient client;
      EXPECT_TRUE(client.connect(gateway_.port()));
      auto reactor = reactor_of(client);
      if (reactor && *reactor != avoid) return client;
    }
    ADD_FAILURE() << "64 connections all landed on reactor " << avoid;
    return TestClient{};
  }

  GatewayProcess gateway_;
  std::unique_ptr<MetricsHttp> http_;
};

// Sends n numbered data frames and reads their echoes back.
void echo_numbered(TestClient& client, int from, int n) {
  for (int i = from; i < from + n; ++i)
    ASSERT_TRUE(client.send_frame("frame-" + std::to_string(i)));
  for (int i = from; i < from + n; ++i)
    ASSERT_TRUE(client.expect_frame("frame-" + std::to_string(i)));
}

TEST_F(MultiReactorTest, ResumeOnAnotherReactorReplaysWhatWasMissed) {
  TestClient first;
  ASSERT_TRUE(first.connect(gateway_.port()));
  std::string id;
  ASSERT_TRUE(first.handshake(after(kPromptWait), &id));
  const auto home = reactor_of(first);
  ASSERT_TRUE(home.has_value());
  echo_numbered(first, 1, 6);
  first.reset();  // dropped abruptly: the session stays, detached, on `home`

  TestClient second = connect_elsewhere(*home);
  ASSERT_FALSE(HasFailure());
  // The resume and a data frame in one write: the frame waits for the answer.
  ASSERT_TRUE(second.send_frame("FLUX_RESUME " + id + " 2"));
  ASSERT_TRUE(second.send_frame("frame-7"));
  ASSERT_TRUE(second.expect_frame("FLUX_READY " + id + " 6"));
  for (int i = 3; i <= 7; ++i) ASSERT_TRUE(second.expect_frame("frame-" + std::to_string(i)));

  // Sessions never move: `second` was handed to the session's reactor, and
  // a resume from yet another reactor takes it over there.
  const auto moved_to = reactor_of(second);
  ASSERT_TRUE(moved_to.has_value());
  EXPECT_EQ(*moved_to, *home) << "the connection follows its session, not the other way round";
  TestClient third = connect_elsewhere(*moved_to);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(third.send_frame("FLUX_RESUME " + id + " 7"));
  ASSERT_TRUE(third.expect_frame("FLUX_READY " + id + " 7"));
  ASSERT_TRUE(second.expect_frame("FLUX_ERROR session-taken-over"));
  EXPECT_TRUE(second.wait_closed());
  echo_numbered(third, 8, 3);

  auto stats = get_json("/stats");
  ASSERT_TRUE(stats.has_value());
  const json& resumes = (*stats)["total"]["sessions"]["resumes_total"];
  EXPECT_EQ(resumes["ok"].get<uint64_t>(), 1u);
  EXPECT_EQ(resumes["taken-over"].get<uint64_t>(), 1u);
}

TEST_F(MultiReactorTest, CrossReactorResumeRefusalsMatchTheLocalOnes) {
  TestClient first;
  ASSERT_TRUE(first.connect(gateway_.port()));
  std::string id;
  ASSERT_TRUE(first.handshake(after(kPromptWait), &id));
  const auto home = reactor_of(first);
  ASSERT_TRUE(home.has_value());
  echo_numbered(first, 1, 2);

  TestClient other = connect_elsewhere(*home);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(other.send_frame("FLUX_RESUME " + id + " 9"));
  ASSERT_TRUE(other.expect_frame("FLUX_INVALID bad-seq"));
  // Still in HANDSHAKE on its own reactor, and the session is untouched.
  ASSERT_TRUE(other.send_frame("FLUX_HELLO"));
  auto ready = other.read_frame();
  ASSERT_TRUE(ready.has_value());
  EXPECT_TRUE(ready->starts_with("FLUX_READY "));
  echo_numbered(first, 3, 2);
}

// Found by the fuzzer's two-reactor mode: a connection handed to another
// reactor for a resume that was refused is still in HANDSHAKE, and its next
// resume may name a session of any reactor; it used to get session-unknown
// for a live session unless that session happened to live where it was.
TEST_F(MultiReactorTest, AResumeAfterARefusedHandedResumeFollowsItsOwnSession) {
  TestClient holder_a, holder_b;
  const auto [id_a, home_a] = open_session(holder_a);
  const auto b = open_session_elsewhere(holder_b, home_a);
  const auto& [id_b, home_b] = b;
  ASSERT_NE(home_b, home_a) << "64 sessions all on reactor " << home_a;
  echo_numbered(holder_b, 1, 3);

  TestClient resumer = connect_elsewhere(home_a);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(resumer.send_frame("FLUX_RESUME " + id_a + " 9"));
  ASSERT_TRUE(resumer.expect_frame("FLUX_INVALID bad-seq"));
  ASSERT_TRUE(resumer.send_frame("FLUX_RESUME " + id_b + " 1"));
  ASSERT_TRUE(resumer.expect_frame("FLUX_READY " + id_b + " 3"));
  ASSERT_TRUE(resumer.expect_frame("frame-2"));
  ASSERT_TRUE(resumer.expect_frame("frame-3"));
  ASSERT_TRUE(holder_b.expect_frame("FLUX_ERROR session-taken-over"));
  echo_numbered(resumer, 4, 2);
  EXPECT_EQ(reactor_of(resumer), home_b);
}

// Each hand-off starts the connection anew on the owner's reactor; the
// handshake deadline set at accept must come along, or a client that keeps
// sending refused resumes across reactors would never be timed out.
class MultiReactorHandshakeTest : public MultiReactorTest {
 protected:
  std::vector<std::string> flags() const override {
    return {"--reactors", "2", "--handshake-timeout", "1s"};
  }
};

TEST_F(MultiReactorHandshakeTest, HandOffsDoNotRenewTheHandshakeDeadline) {
  TestClient holder_a, holder_b;
  const auto [id_a, home_a] = open_session(holder_a);
  const auto b = open_session_elsewhere(holder_b, home_a);
  ASSERT_NE(b.second, home_a) << "64 sessions all on reactor " << home_a;

  TestClient bouncer;
  ASSERT_TRUE(bouncer.connect(gateway_.port()));
  const auto accepted = Clock::now();
  const Deadline give_up = after(std::chrono::seconds(10));
  std::optional<std::string> last;
  for (int i = 0; Clock::now() < give_up; ++i) {
    // Refused (bad-seq) resumes of sessions on alternate reactors: every
    // one after the first moves the connection.
    if (!bouncer.send_frame("FLUX_RESUME " + (i % 2 ? b.first : id_a) + " 99")) break;
    last = bouncer.read_frame();
    if (!last || *last != "FLUX_INVALID bad-seq") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // pacing, not waiting
  }
  ASSERT_TRUE(last.has_value()) << "closed without the handshake-timeout error";
  EXPECT_EQ(*last, "FLUX_ERROR handshake-timeout");
  EXPECT_LT(Clock::now() - accepted, std::chrono::seconds(5))
      << "timed out only when the test gave up: hand-offs renewed the deadline";
  EXPECT_TRUE(bouncer.wait_closed());
}

TEST_F(MultiReactorTest, ConnectionsSpreadOverEveryReactor) {
  constexpr int kClients = 200;
  std::vector<TestClient> clients(kClients);
  for (auto& client : clients) ASSERT_TRUE(client.connect(gateway_.port()));
  for (auto& client : clients) ASSERT_TRUE(client.handshake());

  std::map<std::string, uint64_t> ready;
  const Deadline deadline = after(kPromptWait);
  uint64_t total = 0;
  while (Clock::now() < deadline && total != kClients) {
    auto stats = get_json("/stats");
    ASSERT_TRUE(stats.has_value());
    ASSERT_EQ((*stats)["reactors"].size(), 4u);
    ready.clear();
    total = 0;
    for (const json& reactor : (*stats)["reactors"]) {
      const auto n = reactor["connections"]["by_state"]["ready"].get<uint64_t>();
      ready[reactor["reactor"].get<std::string>()] = n;
      total += n;
    }
  }
  ASSERT_EQ(total, uint64_t{kClients});
  // SO_REUSEPORT hashes the 4-tuple: every reactor gets a share (with 200
  // clients, an empty reactor would mean the spreading does not work).
  for (const auto& [reactor, n] : ready) EXPECT_GT(n, 10u) << "reactor " << reactor;
  auto health = http_->get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace flux::itest
