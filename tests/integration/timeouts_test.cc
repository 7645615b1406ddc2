// Handshake and idle timeouts (docs/protocol.md sections 3 and 5), with the
// bounds shrunk by flags so the real timers fire within a second.
//
// Each timing assertion is two-sided: the error must not come before the
// timeout (a timer armed too short, or from the wrong event) and must come
// well before what a wrong implementation would give (a timer reset by
// partial frames or by FLUX_INVALID).

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kHandshakeTimeout{300};
constexpr milliseconds kIdleTimeout{500};

// The gateway's timer starts at accept/handshake, which can precede the
// timestamp the test takes by the test's own wakeup latency, and libevent
// rounds timers to the millisecond: allow that much earliness, no more.
constexpr milliseconds kEarlySlack{20};

// Slowloris pace: one byte per tick, so a 14-byte FLUX_HELLO frame takes
// 1.4 s, far longer than either timeout.
constexpr milliseconds kDribbleTick{100};

class TimeoutsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(gateway_.start({"--handshake-timeout", "300ms", "--idle-timeout", "500ms"}));
    connecting_ = Clock::now();
    ASSERT_TRUE(client_.connect(gateway_.port()));
  }

  // Sends `frame` one byte per tick until a frame arrives; returns it, or
  // nullopt if the whole frame went out and nothing came back by then.
  std::optional<std::string> dribble_until_reply(const std::string& frame) {
    for (char c : frame) {
      if (!client_.send_raw(std::string(1, c))) break;  // gateway gave up on us
      if (auto reply = client_.read_frame(after(kDribbleTick))) return reply;
    }
    return client_.read_frame(after(kDribbleTick));
  }

  // The error comes after `timeout` (minus slack), before `latest`, then EOF.
  void expect_timeout_error(const std::optional<std::string>& reply, const char* code,
                            Clock::time_point start, milliseconds timeout, milliseconds latest) {
    const auto elapsed = ms_since(start);
    ASSERT_TRUE(reply) << "no FLUX_ERROR " << code << " (" << client_.state() << ")";
    EXPECT_EQ(*reply, std::string("FLUX_ERROR ") + code);
    EXPECT_GE(elapsed, (timeout - kEarlySlack).count()) << "timed out early";
    EXPECT_LT(elapsed, latest.count()) << "timed out late";
    EXPECT_TRUE(client_.expect_closed());
  }

  GatewayProcess gateway_;
  TestClient client_;
  // Taken before connect(): the handshake deadline runs from the gateway's
  // accept, which is never earlier, so "not early" holds however long this
  // thread waits between connect() and the test body on a loaded machine.
  Clock::time_point connecting_;
};

TEST_F(TimeoutsTest, SilentClientGetsHandshakeTimeout) {
  const auto start = connecting_;
  const auto reply = client_.read_frame(after(kHandshakeTimeout + kPromptWait));
  expect_timeout_error(reply, "handshake-timeout", start, kHandshakeTimeout,
                       kHandshakeTimeout + kPromptWait);
}

// Bytes of an unfinished frame are not a handshake: the deadline holds.
TEST_F(TimeoutsTest, SlowlorisHandshakeStillTimesOut) {
  const auto start = connecting_;
  const auto reply = dribble_until_reply(encode_frame("FLUX_HELLO"));
  expect_timeout_error(reply, "handshake-timeout", start, kHandshakeTimeout, milliseconds(1200));
}

// FLUX_INVALID leaves the connection in HANDSHAKE "with the same timeout":
// answering a resume must not restart the clock. A resume every 100 ms for
// 1.5 s would keep a reset timer from ever firing before 1.8 s.
TEST_F(TimeoutsTest, InvalidResumeDoesNotResetHandshakeTimeout) {
  const auto start = connecting_;
  const std::string resume = "FLUX_RESUME 0123456789abcdef0123456789abcdef 0";
  std::optional<std::string> reply;
  while (ms_since(start) < 1500) {
    if (!client_.send_frame(resume)) break;
    reply = client_.read_frame(after(kDribbleTick));
    while (reply == "FLUX_INVALID session-unknown") reply = client_.read_frame(after(kDribbleTick));
    if (reply) break;
  }
  expect_timeout_error(reply, "handshake-timeout", start, kHandshakeTimeout, milliseconds(1200));
}

TEST_F(TimeoutsTest, QuietReadyConnectionGetsIdleTimeout) {
  ASSERT_TRUE(client_.handshake());
  const auto start = Clock::now();
  const auto reply = client_.read_frame(after(kIdleTimeout + kPromptWait));
  expect_timeout_error(reply, "idle-timeout", start, kIdleTimeout, kIdleTimeout + kPromptWait);
}

// Only complete frames count as activity: a data frame dribbled byte by
// byte (2.4 s in all) still idles out at 500 ms.
TEST_F(TimeoutsTest, SlowlorisDataFrameStillIdlesOut) {
  ASSERT_TRUE(client_.handshake());
  const auto start = Clock::now();
  const auto reply = dribble_until_reply(encode_frame(make_payload(1, 20)));
  expect_timeout_error(reply, "idle-timeout", start, kIdleTimeout, milliseconds(1500));
}

// FLUX_PING every 200 ms keeps a connection alive for three idle timeouts;
// once the pings stop, the idle timeout applies again, counted from the last.
TEST_F(TimeoutsTest, PingKeepsConnectionAliveBeyondIdleTimeout) {
  ASSERT_TRUE(client_.handshake());
  const auto start = Clock::now();
  while (ms_since(start) < 3 * kIdleTimeout.count()) {
    ASSERT_TRUE(client_.send_frame("FLUX_PING keepalive"));
    ASSERT_TRUE(client_.expect_frame("FLUX_PONG keepalive"));
    // Pacing the keep-alive, not waiting for a condition.
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_TRUE(client_.send_frame("still ready"));
  ASSERT_TRUE(client_.expect_frame("still ready"));
  const auto last_activity = Clock::now();
  const auto reply = client_.read_frame(after(kIdleTimeout + kPromptWait));
  expect_timeout_error(reply, "idle-timeout", last_activity, kIdleTimeout,
                       kIdleTimeout + kPromptWait);
}

}  // namespace
}  // namespace flux::itest
