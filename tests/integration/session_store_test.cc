// --session-store redis:// against the real binary and a real redis-server
// (tests/support/redis_server.h): sessions resumed on another node and on
// another reactor, exactly last_seq+1..seq; the previous holder told
// session-taken-over; a node killed with SIGKILL costs nothing; echoes wait
// for Redis; Redis down: echoes go on (node-local), /healthz says degraded,
// the store comes back by itself. Every gateway runs two reactors, so the
// store's per-reactor connections and the node channel are exercised
// across threads (this suite also runs under ThreadSanitizer).

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/redis_server.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStoreUp{15};

std::string frame_text(int session, int n) {
  return make_payload(uint64_t(session) * 1000 + uint64_t(n), 40);
}

// A node with the store, two reactors, node id `node`.
::testing::AssertionResult start_node(GatewayProcess& gw, const RedisServer& redis, int node,
                                      std::vector<std::string> extra = {}) {
  // --linger 1s: at the end, connections the test left open close quickly.
  std::vector<std::string> args = {
      "--reactors",      "2",         "--node-id", std::to_string(node),
      "--session-store", redis.url(), "--linger",  "1s"};
  args.insert(args.end(), extra.begin(), extra.end());
  if (auto started = gw.start(args); !started) return started;
  // Every reactor's store link is up before the test starts.
  MetricsHttp http(gw.metrics_port());
  const Deadline deadline = after(kStoreUp);
  while (Clock::now() < deadline) {
    if (http.sum("flux_session_store_connected") == 2.0) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(milliseconds(20));  // polled condition, bounded by the deadline
  }
  return ::testing::AssertionFailure() << "the session store did not connect on node " << node;
}

// HELLO and `frames` echoes; the session id.
std::string open_session(TestClient& client, uint16_t port, int tag, int frames) {
  std::string id;
  EXPECT_TRUE(client.connect(port));
  EXPECT_TRUE(client.handshake(after(kPromptWait), &id));
  std::vector<std::string> payloads;
  for (int n = 1; n <= frames; ++n) payloads.push_back(frame_text(tag, n));
  EXPECT_TRUE(client.echo_stream(payloads, after(seconds(10))));
  return id;
}

::testing::AssertionResult resume_and_expect(TestClient& client, uint16_t port,
                                             const std::string& id, int tag, uint64_t last_seq,
                                             uint64_t seq) {
  if (auto ok = client.connect(port); !ok) return ok;
  if (auto ok = client.send_frame("FLUX_RESUME " + id + " " + std::to_string(last_seq)); !ok)
    return ok;
  if (auto ok = client.expect_frame("FLUX_READY " + id + " " + std::to_string(seq)); !ok) return ok;
  for (uint64_t n = last_seq + 1; n <= seq; ++n)
    if (auto ok = client.expect_frame(frame_text(tag, int(n))); !ok)
      return ok << " (replay " << n << ")";
  // A PING barrier: nothing else was replayed.
  if (auto ok = client.send_frame("FLUX_PING end"); !ok) return ok;
  return client.expect_frame("FLUX_PONG end");
}

class SessionStoreIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis.start()); }
  RedisServer redis;
};

TEST_F(SessionStoreIntegration, ASessionResumesOnAnotherNodeWithExactlyWhatWasMissed) {
  GatewayProcess one;
  GatewayProcess two;
  ASSERT_TRUE(start_node(one, redis, 1));
  ASSERT_TRUE(start_node(two, redis, 2));
  TestClient first;
  const std::string id = open_session(first, one.port(), 7, 6);
  first.reset();  // the connection drops; the client saw all 6, says it saw 3
  TestClient second;
  ASSERT_TRUE(resume_and_expect(second, two.port(), id, 7, 3, 6));
  // It goes on there: seq 7, echoed after Redis has it.
  ASSERT_TRUE(second.echo_stream({frame_text(7, 7)}, after(kPromptWait)));
  EXPECT_EQ(MetricsHttp(two.metrics_port()).sum("flux_session_store_takeovers_total"), 1.0);
  // ok, or taken-over when node one had not yet seen the RST and detached it
  // in Redis: either way one resume, and it succeeded.
  MetricsHttp http_two(two.metrics_port());
  EXPECT_EQ(http_two.sum("flux_resumes_total", {{"result", "ok"}}).value_or(0) +
                http_two.sum("flux_resumes_total", {{"result", "taken-over"}}).value_or(0),
            1.0);
  EXPECT_EQ(redis.command({"HGET", "flux:s:" + id, "seq"}), "7");
  EXPECT_TRUE(one.stop_cleanly());
  EXPECT_TRUE(two.stop_cleanly());
}

TEST_F(SessionStoreIntegration, TheHolderOnAnotherNodeIsToldSessionTakenOver) {
  GatewayProcess one;
  GatewayProcess two;
  ASSERT_TRUE(start_node(one, redis, 1));
  ASSERT_TRUE(start_node(two, redis, 2));
  TestClient holder;
  const std::string id = open_session(holder, one.port(), 3, 4);
  TestClient taker;
  ASSERT_TRUE(resume_and_expect(taker, two.port(), id, 3, 4, 4));
  EXPECT_TRUE(holder.expect_frame("FLUX_ERROR session-taken-over"));
  EXPECT_TRUE(holder.expect_closed());
  ASSERT_TRUE(taker.echo_stream({frame_text(3, 5)}, after(kPromptWait)));
  EXPECT_TRUE(one.stop_cleanly());
  EXPECT_TRUE(two.stop_cleanly());
}

// Many sessions, resumed on new connections of the same node: the kernel
// spreads them over both reactors, so most resumes take a session from the
// other reactor (through Redis and the node's channel).
TEST_F(SessionStoreIntegration, ResumesAcrossReactorsOfOneNodeTakeOverCleanly) {
  GatewayProcess node;
  ASSERT_TRUE(start_node(node, redis, 5));
  constexpr int kSessions = 24;
  std::vector<TestClient> holders(kSessions);
  std::vector<std::string> ids;
  for (int i = 0; i < kSessions; ++i) ids.push_back(open_session(holders[i], node.port(), i, 3));
  for (int i = 0; i < kSessions; ++i) {
    TestClient taker;
    ASSERT_TRUE(resume_and_expect(taker, node.port(), ids[i], i, 1, 3)) << "session " << i;
    ASSERT_TRUE(holders[i].expect_frame("FLUX_ERROR session-taken-over")) << "session " << i;
    ASSERT_TRUE(taker.echo_stream({frame_text(i, 4)}, after(kPromptWait)));
  }
  EXPECT_EQ(MetricsHttp(node.metrics_port()).sum("flux_resumes_total", {{"result", "taken-over"}}),
            double(kSessions));
  EXPECT_TRUE(node.stop_cleanly());
}

TEST_F(SessionStoreIntegration, ANodeKilledWithSigkillLosesNoSession) {
  GatewayProcess doomed;
  GatewayProcess survivor;
  ASSERT_TRUE(start_node(doomed, redis, 1));
  ASSERT_TRUE(start_node(survivor, redis, 2));
  constexpr int kSessions = 10;
  std::vector<TestClient> clients(kSessions);
  std::vector<std::string> ids;
  for (int i = 0; i < kSessions; ++i)
    ids.push_back(open_session(clients[i], doomed.port(), i, 5 + i));
  doomed.signal(SIGKILL);
  ASSERT_TRUE(doomed.wait_exit(after(seconds(10))));
  for (int i = 0; i < kSessions; ++i) {
    EXPECT_TRUE(clients[i].wait_closed());
    TestClient resumed;
    // Each client saw every echo; it says it saw all but the last two.
    ASSERT_TRUE(
        resume_and_expect(resumed, survivor.port(), ids[i], i, uint64_t(3 + i), uint64_t(5 + i)))
        << "session " << i;
  }
  EXPECT_TRUE(survivor.stop_cleanly());
}

// Echo after persist, seen from outside: with Redis frozen the echo does not
// come; once Redis answers, it does (within --session-store-timeout).
TEST_F(SessionStoreIntegration, AnEchoWaitsUntilRedisHasItsFrame) {
  GatewayProcess node;
  ASSERT_TRUE(start_node(node, redis, 1, {"--session-store-timeout", "20s"}));
  TestClient client;
  const std::string id = open_session(client, node.port(), 1, 1);
  redis.pause();
  ASSERT_TRUE(client.send_frame(frame_text(1, 2)));
  ASSERT_TRUE(client.send_frame("FLUX_PING after"));
  EXPECT_FALSE(client.read_frame(after(milliseconds(500)))) << "an echo left before Redis had it";
  EXPECT_EQ(MetricsHttp(node.metrics_port()).sum("flux_session_store_pending_frames"), 1.0);
  redis.resume();
  EXPECT_TRUE(client.expect_frame(frame_text(1, 2)));
  EXPECT_TRUE(client.expect_frame("FLUX_PONG after"));  // what followed kept its place
  EXPECT_EQ(redis.command({"HGET", "flux:s:" + id, "seq"}), "2");
  EXPECT_TRUE(node.stop_cleanly());
}

TEST_F(SessionStoreIntegration, WithRedisDownTheNodeServesDegradedAndRecovers) {
  GatewayProcess node;
  ASSERT_TRUE(start_node(node, redis, 1, {"--session-store-timeout", "300ms"}));
  MetricsHttp http(node.metrics_port());
  TestClient client;
  open_session(client, node.port(), 1, 2);
  redis.kill();
  // Echoes go on, node-local.
  ASSERT_TRUE(client.echo_stream({frame_text(1, 3), frame_text(1, 4)}, after(seconds(10))));
  const auto health = http.get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_NE(health->body.find("degraded: session store"), std::string::npos) << health->body;
  // A new session while Redis is down: served, node-local, counted.
  TestClient late;
  open_session(late, node.port(), 2, 2);
  EXPECT_GE(http.sum("flux_session_store_fallbacks_total").value_or(0), 1.0);
  ASSERT_TRUE(redis.restart());
  const Deadline deadline = after(kStoreUp);
  while (http.sum("flux_session_store_connected") != 2.0 && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));  // polled condition, bounded
  EXPECT_EQ(http.sum("flux_session_store_connected"), 2.0);
  // Back in Redis: a new session is stored again.
  TestClient fresh;
  const std::string id = open_session(fresh, node.port(), 3, 1);
  EXPECT_EQ(redis.command({"HGET", "flux:s:" + id, "seq"}), "1");
  // The fallen-back session lives on, node-local.
  EXPECT_TRUE(client.echo_stream({frame_text(1, 5)}, after(kPromptWait)));
  EXPECT_TRUE(node.stop_cleanly());
}

}  // namespace
}  // namespace flux::itest
