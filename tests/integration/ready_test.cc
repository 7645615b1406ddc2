// docs/protocol.md sections 1, 2 and 5: framing and the READY state, against the
// real binary, through every way TCP may cut or merge the byte stream.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Pacing between pieces of a frame, so that each piece reaches the gateway
// in its own read() (TCP_NODELAY is on). The test does not depend on it for
// correctness: a merged read is also legal, just a weaker test.
constexpr milliseconds kPiecePause{3};

// A gateway with `flags` and one client that completed FLUX_HELLO.
class ReadyTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(const std::vector<std::string>& flags) {
    ASSERT_TRUE(gateway_.start(flags));
    ASSERT_TRUE(client_.connect(gateway_.port()));
    ASSERT_TRUE(client_.handshake(after(kPromptWait), &session_id_));
  }

  // The connection is still READY: a data frame comes back.
  ::testing::AssertionResult still_echoes(std::string_view payload = "still here") {
    if (auto sent = client_.send_frame(payload); !sent) return sent;
    return client_.expect_frame(payload);
  }

  void send_in_pieces(std::string_view bytes, std::vector<size_t> cuts) {
    size_t from = 0;
    cuts.push_back(bytes.size());
    for (size_t cut : cuts) {
      ASSERT_TRUE(client_.send_raw(bytes.substr(from, cut - from)));
      std::this_thread::sleep_for(kPiecePause);
      from = cut;
    }
  }

  GatewayProcess gateway_;
  TestClient client_;
  std::string session_id_;
};

TEST_F(ReadyTest, EchoesDataIdentically) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  const std::vector<std::string> payloads = {
      "hello",
      "",                      // the empty payload is data too
      every_byte,              // NULs, high bytes
      "FLUX",                  // not the control prefix: data
      "flux_ping",             // prefix is case sensitive: data
      " FLUX_PING",            // prefix must be at the start: data
      make_payload(7, 65536),  // exactly the default --max-frame
  };
  for (const auto& payload : payloads) {
    SCOPED_TRACE(describe_payload(payload));
    ASSERT_TRUE(client_.send_frame(payload));
    ASSERT_TRUE(client_.expect_frame(payload));
  }
}

TEST_F(ReadyTest, CoalescedFramesEchoInOrder) {
  std::vector<std::string> payloads;
  for (uint64_t i = 0; i < 200; ++i) payloads.push_back(make_payload(i, i % 50));
  ASSERT_TRUE(client_.send_raw(encode_frames(payloads)));  // one write
  for (size_t i = 0; i < payloads.size(); ++i) {
    ASSERT_TRUE(client_.expect_frame(payloads[i])) << "echo #" << i;
  }
}

TEST_F(ReadyTest, FrameSentByteByByte) {
  const std::string frame = encode_frame("one byte at a time");
  std::vector<size_t> cuts;
  for (size_t i = 1; i < frame.size(); ++i) cuts.push_back(i);
  send_in_pieces(frame, cuts);
  EXPECT_TRUE(client_.expect_frame("one byte at a time"));
}

TEST(ReadyHandshake, HelloSentByteByByte) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  TestClient client;
  ASSERT_TRUE(client.connect(gateway.port()));
  for (char c : encode_frame("FLUX_HELLO")) {
    ASSERT_TRUE(client.send_raw(std::string(1, c)));
    std::this_thread::sleep_for(kPiecePause);
  }
  const auto reply = client.read_frame();
  ASSERT_TRUE(reply) << client.state();
  EXPECT_TRUE(is_fresh_ready(*reply)) << describe_payload(*reply);
}

// The header cut at every position, and a second frame whose header starts
// at the end of the first write.
TEST_F(ReadyTest, HeaderSplitAcrossWrites) {
  for (size_t cut = 1; cut <= 5; ++cut) {
    SCOPED_TRACE("cut after byte " + std::to_string(cut));
    send_in_pieces(encode_frame("split header"), {cut});
    ASSERT_TRUE(client_.expect_frame("split header"));
  }
  const std::string two = encode_frame("first") + encode_frame("second");
  send_in_pieces(two, {encode_frame("first").size() + 2});
  ASSERT_TRUE(client_.expect_frame("first"));
  EXPECT_TRUE(client_.expect_frame("second"));
}

TEST_F(ReadyTest, PingAnswersPongWithToken) {
  ASSERT_TRUE(client_.send_frame("FLUX_PING"));
  ASSERT_TRUE(client_.expect_frame("FLUX_PONG"));
  ASSERT_TRUE(client_.send_frame("FLUX_PING tok"));
  ASSERT_TRUE(client_.expect_frame("FLUX_PONG tok"));
  // The token is everything after the first space (gateway's documented choice).
  ASSERT_TRUE(client_.send_frame("FLUX_PING a b"));
  ASSERT_TRUE(client_.expect_frame("FLUX_PONG a b"));
}

// Replies keep the order of the frames they answer, data or control.
TEST_F(ReadyTest, ControlRepliesKeepFrameOrder) {
  ASSERT_TRUE(client_.send_raw(encode_frames({"d1", "FLUX_PING x", "d2", "FLUX_FOO", "d3"})));
  ASSERT_TRUE(client_.expect_frame("d1"));
  ASSERT_TRUE(client_.expect_frame("FLUX_PONG x"));
  ASSERT_TRUE(client_.expect_frame("d2"));
  ASSERT_TRUE(client_.expect_frame("FLUX_ERROR unknown-command"));
  EXPECT_TRUE(client_.expect_frame("d3"));
}

// Echoes queued before FLUX_BYE are flushed first, then FLUX_BYE, then EOF.
TEST_F(ReadyTest, ByeAnswersByeThenCloses) {
  ASSERT_TRUE(client_.send_raw(encode_frames({"last words", "FLUX_BYE"})));
  ASSERT_TRUE(client_.expect_frame("last words"));
  ASSERT_TRUE(client_.expect_frame("FLUX_BYE"));
  EXPECT_TRUE(client_.expect_closed());
}

TEST_F(ReadyTest, HandshakeWhenReadyIsAlreadyReadyAndStaysOpen) {
  const std::vector<std::string> requests = {"FLUX_HELLO", "FLUX_HELLO 1", "FLUX_HELLO 2",
                                             "FLUX_RESUME " + session_id_ + " 0"};
  for (const auto& request : requests) {
    SCOPED_TRACE(request);
    ASSERT_TRUE(client_.send_frame(request));
    ASSERT_TRUE(client_.expect_frame("FLUX_ERROR already-ready"));
    ASSERT_TRUE(still_echoes());
  }
}

TEST_F(ReadyTest, UnknownCommandStaysOpen) {
  // Control words are whole words: FLUX_PINGX is not FLUX_PING. FLUX_PONG is
  // a server reply, not something a client sends.
  for (const char* request : {"FLUX_FOO", "FLUX_", "FLUX_PINGX", "FLUX_PONG"}) {
    SCOPED_TRACE(request);
    ASSERT_TRUE(client_.send_frame(request));
    ASSERT_TRUE(client_.expect_frame("FLUX_ERROR unknown-command"));
    ASSERT_TRUE(still_echoes());
  }
}

TEST_F(ReadyTest, ThousandFramesOfVaryingSizesEchoInOrder) {
  std::vector<std::string> payloads;
  for (uint64_t i = 0; i < 1000; ++i) {
    // Mostly small and odd-sized, with a full 64 KiB frame every 100th.
    const size_t size = i % 100 == 99 ? 65536 : (i * 7919) % 4097;
    payloads.push_back(make_payload(i, size));
  }
  EXPECT_TRUE(client_.echo_stream(payloads, after(seconds(30))));
}

// After the client's FIN, every frame it sent before is still answered,
// then the gateway closes (READY --FIN--> CLOSING: flush, then close).
TEST_F(ReadyTest, HalfCloseStillReceivesEveryEcho) {
  std::vector<std::string> payloads;
  for (uint64_t i = 0; i < 100; ++i) payloads.push_back(make_payload(i, 100 + i));
  ASSERT_TRUE(client_.send_raw(encode_frames(payloads)));
  client_.shutdown_write();
  for (size_t i = 0; i < payloads.size(); ++i) {
    ASSERT_TRUE(client_.expect_frame(payloads[i])) << "echo #" << i;
  }
  EXPECT_TRUE(client_.expect_closed());
}

class ReadyMaxFrameTest : public ReadyTest {
 protected:
  void SetUp() override { start({"--max-frame", "1024"}); }
};

TEST_F(ReadyMaxFrameTest, FrameAtLimitEchoesAndOneMoreIsFatal) {
  const std::string at_limit = make_payload(1, 1024);
  ASSERT_TRUE(client_.send_frame(at_limit));
  ASSERT_TRUE(client_.expect_frame(at_limit));
  ASSERT_TRUE(client_.send_frame(make_payload(2, 1025)));
  ASSERT_TRUE(client_.expect_frame("FLUX_ERROR frame-too-large"));
  EXPECT_TRUE(client_.expect_closed());
}

}  // namespace
}  // namespace flux::itest
