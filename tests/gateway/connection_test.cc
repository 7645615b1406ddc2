// Connection in-process: a real Reactor on the test's thread, clients on
// socketpairs (reactor_driver.h). The handshake table of docs/protocol.md
// section 4, READY's commands (section 5), the deadlines, CLOSING, and the
// resume outcomes of section 8 as a connection answers them: replay,
// takeover (the previous connection is told and closed), bad-seq.

#include "gateway/connection.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/reactor.h"
#include "tests/gateway/reactor_driver.h"

namespace flux {
namespace {

using namespace std::chrono_literals;
using testing::PairClient;
using testing::ready_session_id;
using testing::turn_until;

class ConnectionTest : public ::testing::Test {
 protected:
  Reactor& reactor() {
    if (!reactor_) reactor_ = std::make_unique<Reactor>(options_);
    return *reactor_;
  }
  std::optional<std::string> receive(PairClient& client) { return client.receive({&reactor()}); }
  bool sees_eof(PairClient& client) { return client.sees_eof({&reactor()}); }
  uint64_t closed(CloseReason reason) { return testing::closed_count(reactor(), reason); }
  std::string hello(PairClient& client) {
    client.send("FLUX_HELLO 1");
    return ready_session_id(receive(client));
  }

  Options options_ = testing::quick_options();
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(ConnectionTest, HelloStartsANewSessionAtSeqZero) {
  PairClient client(reactor());
  client.send("FLUX_HELLO");
  const auto reply = receive(client);
  ASSERT_NE(ready_session_id(reply), "");
  EXPECT_EQ(reply->substr(reply->size() - 2), " 0");
}

TEST_F(ConnectionTest, AFirstFrameThatIsNoHandshakeIsRefusedAndClosed) {
  PairClient client(reactor());
  client.send("data first");
  EXPECT_EQ(receive(client), "FLUX_ERROR handshake-expected");
  EXPECT_TRUE(sees_eof(client));
  EXPECT_EQ(closed(CloseReason::kProtocolError), 0u) << "still CLOSING, waiting for our EOF";
  client.close();
  EXPECT_TRUE(turn_until({&reactor()}, [&] { return reactor().connection_count() == 0; }));
  EXPECT_EQ(closed(CloseReason::kProtocolError), 1u);
}

TEST_F(ConnectionTest, AnUnsupportedVersionIsRefused) {
  PairClient client(reactor());
  client.send("FLUX_HELLO 2");
  EXPECT_EQ(receive(client), "FLUX_ERROR unsupported-version");
  EXPECT_TRUE(sees_eof(client));
}

TEST_F(ConnectionTest, ReadyEchoesDataAndAnswersControlFrames) {
  PairClient client(reactor());
  ASSERT_NE(hello(client), "");
  client.send("");
  client.send("FLUX_PING t-42");
  client.send("FLUX_PING");
  client.send("FLUX_HELLO");
  client.send("FLUX_WHAT");
  client.send(std::string(1000, 'x'));
  EXPECT_EQ(receive(client), "");
  EXPECT_EQ(receive(client), "FLUX_PONG t-42");
  EXPECT_EQ(receive(client), "FLUX_PONG");
  EXPECT_EQ(receive(client), "FLUX_ERROR already-ready");
  EXPECT_EQ(receive(client), "FLUX_ERROR unknown-command");
  EXPECT_EQ(receive(client), std::string(1000, 'x'));
}

TEST_F(ConnectionTest, ManyFramesInOneWriteAreEchoedInOrder) {
  PairClient client(reactor());
  ASSERT_NE(hello(client), "");
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += testing::frame(std::to_string(i));
  client.send_raw(burst);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(receive(client), std::to_string(i));
}

TEST_F(ConnectionTest, AFrameOverMaxFrameIsRefused) {
  options_.max_frame = 100;
  PairClient client(reactor());
  ASSERT_NE(hello(client), "");
  client.send(std::string(101, 'x'));
  EXPECT_EQ(receive(client), "FLUX_ERROR frame-too-large");
  EXPECT_TRUE(sees_eof(client));
}

TEST_F(ConnectionTest, HandshakeTimeoutClosesASilentClient) {
  options_.handshake_timeout = Millis{50};
  PairClient client(reactor());
  EXPECT_EQ(receive(client), "FLUX_ERROR handshake-timeout");
  EXPECT_TRUE(sees_eof(client));
}

TEST_F(ConnectionTest, IdleTimeoutClosesAQuietReadyClient) {
  options_.idle_timeout = Millis{50};
  PairClient client(reactor());
  ASSERT_NE(hello(client), "");
  EXPECT_EQ(receive(client), "FLUX_ERROR idle-timeout");
  EXPECT_TRUE(sees_eof(client));
}

TEST_F(ConnectionTest, PeerEofClosesAndLeavesTheSessionResumable) {
  PairClient first(reactor());
  const std::string id = hello(first);
  first.send("kept");
  ASSERT_EQ(receive(first), "kept");
  first.shut_write();
  EXPECT_TRUE(sees_eof(first));
  first.close();
  ASSERT_TRUE(turn_until({&reactor()}, [&] { return reactor().connection_count() == 0; }));
  EXPECT_EQ(closed(CloseReason::kEof), 1u);
  EXPECT_EQ(reactor().metrics().sessions.detached.get(), 1u);

  PairClient second(reactor());
  second.send("FLUX_RESUME " + id + " 0");
  EXPECT_EQ(receive(second), "FLUX_READY " + id + " 1");
  EXPECT_EQ(receive(second), "kept");
}

TEST_F(ConnectionTest, AResumeTakesTheSessionOverFromTheConnectionHoldingIt) {
  PairClient holder(reactor());
  const std::string id = hello(holder);
  ASSERT_NE(id, "");
  PairClient taker(reactor());
  taker.send("FLUX_RESUME " + id + " 0");
  EXPECT_EQ(receive(taker), "FLUX_READY " + id + " 0");
  EXPECT_EQ(receive(holder), "FLUX_ERROR session-taken-over");
  EXPECT_TRUE(sees_eof(holder));
  taker.send("still here");
  EXPECT_EQ(receive(taker), "still here");
  EXPECT_EQ(reactor().metrics().sessions.resumes_total[int(ResumeResult::kTakenOver)].get(), 1u);
}

TEST_F(ConnectionTest, RefusedResumesLeaveTheConnectionInHandshake) {
  PairClient owner(reactor());
  const std::string id = hello(owner);
  PairClient client(reactor());
  client.send("FLUX_RESUME " + id + " 5");
  EXPECT_EQ(receive(client), "FLUX_INVALID bad-seq");
  client.send("FLUX_RESUME 0123456789abcdef0123456789abcdef 0");
  EXPECT_EQ(receive(client), "FLUX_INVALID session-unknown");
  client.send("FLUX_RESUME not-an-id 0");
  EXPECT_EQ(receive(client), "FLUX_INVALID session-unknown");
  client.send("FLUX_HELLO");
  EXPECT_NE(ready_session_id(receive(client)), "") << "still in HANDSHAKE";
}

TEST_F(ConnectionTest, ByeEndsTheSessionForGood) {
  PairClient client(reactor());
  const std::string id = hello(client);
  client.send("FLUX_BYE");
  EXPECT_EQ(receive(client), "FLUX_BYE");
  EXPECT_TRUE(sees_eof(client));
  client.close();
  ASSERT_TRUE(turn_until({&reactor()}, [&] { return reactor().connection_count() == 0; }));
  PairClient again(reactor());
  again.send("FLUX_RESUME " + id + " 0");
  EXPECT_EQ(receive(again), "FLUX_INVALID session-unknown");
}

}  // namespace
}  // namespace flux
