// docs/protocol.md section 4: the first frame of a connection, against the real
// binary. Each fatal answer must be followed by EOF with nothing after it.

#include <gtest/gtest.h>

#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

// Well formed, and no gateway has ever issued it: sessions do not exist yet,
// and 128 random bits do not collide with this by chance.
constexpr std::string_view kUnknownSessionId = "0123456789abcdef0123456789abcdef";

// A gateway with default flags and one connected client still in HANDSHAKE.
class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(gateway_.start());
    ASSERT_TRUE(client_.connect(gateway_.port()));
  }

  GatewayProcess gateway_;
  TestClient client_;  // declared last: closed before the gateway is killed
};

TEST_F(HandshakeTest, HelloStartsFreshSession) {
  ASSERT_TRUE(client_.handshake());
  ASSERT_TRUE(client_.send_frame("after hello"));
  EXPECT_TRUE(client_.expect_frame("after hello"));
}

TEST_F(HandshakeTest, HelloWithVersionOneStartsFreshSession) {
  ASSERT_TRUE(client_.send_frame("FLUX_HELLO 1"));
  const auto reply = client_.read_frame();
  ASSERT_TRUE(reply) << client_.state();
  EXPECT_TRUE(is_fresh_ready(*reply)) << describe_payload(*reply);
}

// `FLUX_RESUME` with an id nobody issued: the connection stays in HANDSHAKE
// (docs/protocol.md section 8), so the client can start over on it.
TEST_F(HandshakeTest, UnknownResumeIsInvalidThenHelloWorks) {
  ASSERT_TRUE(client_.send_frame("FLUX_RESUME " + std::string(kUnknownSessionId) + " 0"));
  ASSERT_TRUE(client_.expect_frame("FLUX_INVALID session-unknown"));
  ASSERT_TRUE(client_.send_frame("FLUX_RESUME " + std::string(kUnknownSessionId) + " 7"));
  ASSERT_TRUE(client_.expect_frame("FLUX_INVALID session-unknown"));
  ASSERT_TRUE(client_.handshake());
  ASSERT_TRUE(client_.send_frame("resumed nothing"));
  EXPECT_TRUE(client_.expect_frame("resumed nothing"));
}

// A fatal first frame: the expected error, then EOF with nothing after it.
struct FatalFirstFrame {
  const char* name;
  std::string payload;
  const char* error;
};

// Names the case in failure messages instead of dumping its bytes.
void PrintTo(const FatalFirstFrame& c, std::ostream* os) {
  *os << c.name << ": " << describe_payload(c.payload) << " -> " << c.error;
}

class FatalFirstFrameTest : public HandshakeTest,
                            public ::testing::WithParamInterface<FatalFirstFrame> {};

TEST_P(FatalFirstFrameTest, AnswersErrorThenCloses) {
  ASSERT_TRUE(client_.send_frame(GetParam().payload));
  ASSERT_TRUE(client_.expect_frame(std::string("FLUX_ERROR ") + GetParam().error));
  EXPECT_TRUE(client_.expect_closed());
}

const std::string kUnknownId(kUnknownSessionId);

INSTANTIATE_TEST_SUITE_P(
    Handshake, FatalFirstFrameTest,
    ::testing::Values(FatalFirstFrame{"HelloVersion2", "FLUX_HELLO 2", "unsupported-version"},
                      FatalFirstFrame{"HelloVersion0", "FLUX_HELLO 0", "unsupported-version"},
                      FatalFirstFrame{"DataFrame", "hello", "handshake-expected"},
                      FatalFirstFrame{"EmptyFrame", "", "handshake-expected"},
                      FatalFirstFrame{"BinaryGarbage", std::string("\x00\xff\x13garbage\x80", 11),
                                      "handshake-expected"},
                      FatalFirstFrame{"LowercaseHello", "flux_hello", "handshake-expected"},
                      FatalFirstFrame{"UnknownControl", "FLUX_GARBAGE", "handshake-expected"},
                      FatalFirstFrame{"PingBeforeHello", "FLUX_PING", "handshake-expected"},
                      FatalFirstFrame{"ByeBeforeHello", "FLUX_BYE", "handshake-expected"},
                      FatalFirstFrame{"HelloGluedToWord", "FLUX_HELLOX", "handshake-expected"},
                      FatalFirstFrame{"HelloTwoArguments", "FLUX_HELLO a b", "handshake-expected"},
                      FatalFirstFrame{"ResumeNoArguments", "FLUX_RESUME", "handshake-expected"},
                      FatalFirstFrame{"ResumeMissingSeq", "FLUX_RESUME " + kUnknownId,
                                      "handshake-expected"},
                      FatalFirstFrame{"ResumeSeqNotNumber", "FLUX_RESUME " + kUnknownId + " x",
                                      "handshake-expected"}),
    [](const auto& test) { return std::string(test.param.name); });

// 100 handshakes: every id is 32 lowercase hex (checked by handshake()), all
// are distinct, the first 4 digits are the node id (0 by default), and every
// other hex position varies across them. A counter or a timestamp would
// repeat its leading digits; 112 random bits would not (the chance that one
// given position is equal in 100 random ids is 16^-99).
TEST(HandshakeSessionIds, DistinctAndRandomLooking) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  std::set<std::string> ids;
  std::vector<std::set<char>> digits_at(32);
  for (int i = 0; i < 100; ++i) {
    TestClient client;
    ASSERT_TRUE(client.connect(gateway.port()));
    std::string id;
    ASSERT_TRUE(client.handshake(after(kPromptWait), &id)) << "handshake #" << i;
    EXPECT_TRUE(ids.insert(id).second) << "session id issued twice: " << id;
    for (size_t pos = 0; pos < id.size(); ++pos) digits_at[pos].insert(id[pos]);
  }
  for (size_t pos = 0; pos < 4; ++pos)
    EXPECT_EQ(digits_at[pos], std::set<char>{'0'}) << "hex digit " << pos << " is the node id";
  for (size_t pos = 4; pos < digits_at.size(); ++pos) {
    EXPECT_GT(digits_at[pos].size(), 1u) << "hex digit " << pos << " never changes";
  }
}

// --max-frame 1024 while in HANDSHAKE: 1024 bytes is a legal frame (it is just
// not a handshake); 1025 is refused from its header alone, without waiting
// for the payload (docs/protocol.md section 1: "does not read the payload").
class HandshakeMaxFrameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(gateway_.start({"--max-frame", "1024"}));
    ASSERT_TRUE(client_.connect(gateway_.port()));
  }

  GatewayProcess gateway_;
  TestClient client_;
};

TEST_F(HandshakeMaxFrameTest, FrameAtLimitIsReadAsAFrame) {
  ASSERT_TRUE(client_.send_frame(make_payload(1, 1024)));
  ASSERT_TRUE(client_.expect_frame("FLUX_ERROR handshake-expected"));
  EXPECT_TRUE(client_.expect_closed());
}

TEST_F(HandshakeMaxFrameTest, HeaderOverLimitIsRefused) {
  ASSERT_TRUE(client_.send_raw(encode_header(1025)));
  ASSERT_TRUE(client_.expect_frame("FLUX_ERROR frame-too-large"));
  EXPECT_TRUE(client_.expect_closed());
}

// A 4 GiB length must be refused, not allocated.
TEST_F(HandshakeMaxFrameTest, HugeHeaderIsRefused) {
  ASSERT_TRUE(client_.send_raw(encode_header(0xffffffffu)));
  ASSERT_TRUE(client_.expect_frame("FLUX_ERROR frame-too-large"));
  EXPECT_TRUE(client_.expect_closed());
  EXPECT_TRUE(gateway_.running());
}

}  // namespace
}  // namespace flux::itest
