// The protocol vocabulary: decoding of handshake and READY control messages
// row by row against docs/protocol.md sections 4 to 6 (and the decisions
// of docs/protocol.md section 10), the exact wire spelling of every error
// code, and session ids (docs/protocol.md section 4: 32 lowercase hex, 128 random bits).

#include "gateway/protocol.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

#include "gateway/session_id.h"

namespace flux {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::string_view kId = "3f9c0a1b2c3d4e5f60718293a4b5c6e1";

const char* name(HandshakeRequest::Kind kind) {
  switch (kind) {
    case HandshakeRequest::kHello:
      return "kHello";
    case HandshakeRequest::kBadVersion:
      return "kBadVersion";
    case HandshakeRequest::kResume:
      return "kResume";
    case HandshakeRequest::kNotHandshake:
      return "kNotHandshake";
  }
  return "?";
}

const char* name(ReadyRequest::Kind kind) {
  switch (kind) {
    case ReadyRequest::kData:
      return "kData";
    case ReadyRequest::kPing:
      return "kPing";
    case ReadyRequest::kBye:
      return "kBye";
    case ReadyRequest::kAlreadyReady:
      return "kAlreadyReady";
    case ReadyRequest::kUnknownCommand:
      return "kUnknownCommand";
  }
  return "?";
}

// Kinds compared by name so a failure prints "kHello vs kNotHandshake".
void expect_handshake(std::string_view payload, HandshakeRequest::Kind expected) {
  EXPECT_STREQ(name(decode_handshake(payload).kind), name(expected))
      << "payload '" << payload << "' (" << payload.size() << " bytes)";
}

void expect_ready(std::string_view payload, ReadyRequest::Kind expected) {
  EXPECT_STREQ(name(decode_ready(payload).kind), name(expected))
      << "payload '" << payload << "' (" << payload.size() << " bytes)";
}

// ----------------------------------------------------- handshake (docs section 4)

TEST(DecodeHandshake, HelloWithoutVersionIsProtocolOne) {
  expect_handshake("FLUX_HELLO", HandshakeRequest::kHello);
}

TEST(DecodeHandshake, HelloWithVersionOne) {
  expect_handshake("FLUX_HELLO 1", HandshakeRequest::kHello);
}

TEST(DecodeHandshake, HelloWithAnyOtherVersionIsUnsupported) {
  for (std::string_view v : {"FLUX_HELLO 2", "FLUX_HELLO 0", "FLUX_HELLO 10", "FLUX_HELLO 11",
                             "FLUX_HELLO v1", "FLUX_HELLO 1.0"})
    expect_handshake(v, HandshakeRequest::kBadVersion);
}

TEST(DecodeHandshake, HelloWithMoreThanOneArgumentIsNotAHandshake) {
  // docs/protocol.md 10.4.
  expect_handshake("FLUX_HELLO 1 2", HandshakeRequest::kNotHandshake);
  expect_handshake("FLUX_HELLO a b", HandshakeRequest::kNotHandshake);
}

TEST(DecodeHandshake, HelloWithTrailingOrDoubledSpaceIsNotAHandshake) {
  // Control words are separated by single spaces, nothing trails.
  expect_handshake("FLUX_HELLO ", HandshakeRequest::kNotHandshake);
  expect_handshake("FLUX_HELLO 1 ", HandshakeRequest::kNotHandshake);
  expect_handshake("FLUX_HELLO  1", HandshakeRequest::kNotHandshake);
}

TEST(DecodeHandshake, ResumeCarriesIdAndSeq) {
  const std::string payload = "FLUX_RESUME " + std::string(kId) + " 42";
  HandshakeRequest r = decode_handshake(payload);
  ASSERT_STREQ(name(r.kind), "kResume");
  EXPECT_EQ(r.session_id, kId);
  EXPECT_EQ(r.last_seq, 42u);
  // The id is a view of the payload as sent, not a copy.
  EXPECT_EQ(r.session_id.data(), payload.data() + "FLUX_RESUME "sv.size());
}

TEST(DecodeHandshake, ResumeSeqZeroAndLargest) {
  HandshakeRequest zero = decode_handshake("FLUX_RESUME " + std::string(kId) + " 0");
  ASSERT_STREQ(name(zero.kind), "kResume");
  EXPECT_EQ(zero.last_seq, 0u);
  HandshakeRequest max =
      decode_handshake("FLUX_RESUME " + std::string(kId) + " 18446744073709551615");
  ASSERT_STREQ(name(max.kind), "kResume");
  EXPECT_EQ(max.last_seq, UINT64_MAX);
}

TEST(DecodeHandshake, ResumeIdIsPassedOnUnvalidated) {
  // Whether the id names a session is the session table's question
  // (FLUX_INVALID session-unknown), not the decoder's.
  HandshakeRequest r = decode_handshake("FLUX_RESUME not-an-id 3");
  ASSERT_STREQ(name(r.kind), "kResume");
  EXPECT_EQ(r.session_id, "not-an-id");
  EXPECT_EQ(r.last_seq, 3u);
}

TEST(DecodeHandshake, MalformedResumesAreNotHandshakes) {
  const std::string id(kId);
  const std::string cases[] = {
      "FLUX_RESUME",
      "FLUX_RESUME ",
      "FLUX_RESUME " + id,
      "FLUX_RESUME " + id + " ",
      "FLUX_RESUME " + id + " x",
      "FLUX_RESUME " + id + " -1",
      "FLUX_RESUME " + id + " +1",
      "FLUX_RESUME " + id + " 1x",
      "FLUX_RESUME " + id + " 0x10",
      "FLUX_RESUME " + id + " 1 2",
      "FLUX_RESUME " + id + " 1 ",
      "FLUX_RESUME " + id + "  1",
      "FLUX_RESUME  " + id + " 1",
      "FLUX_RESUME  1",
      "FLUX_RESUME " + id + " 18446744073709551616",  // 2^64: does not fit a seq
  };
  for (const std::string& payload : cases)
    expect_handshake(payload, HandshakeRequest::kNotHandshake);
}

TEST(DecodeHandshake, AnythingElseIsNotAHandshake) {
  const std::string_view cases[] = {
      "",
      "data",
      "hello",
      "FLUX_",
      "FLUX_PING",
      "FLUX_BYE",
      "FLUX_READY",
      "FLUX_HELLOX",
      "FLUX_HELLO\n",
      " FLUX_HELLO",
      "flux_hello",
      "FLUX_hello",
      "Flux_Hello",
      "FLUX_RESUMEX 1 2",
      "FLUX_HELLO\t1",
      "\0FLUX_HELLO"sv,
  };
  for (std::string_view payload : cases) expect_handshake(payload, HandshakeRequest::kNotHandshake);
}

TEST(DecodeHandshake, EmbeddedNulIsNotIgnored) {
  expect_handshake("FLUX_HELLO\0"sv, HandshakeRequest::kNotHandshake);
  expect_handshake("FLUX_HELLO 1\0"sv, HandshakeRequest::kBadVersion);
}

// --------------------------------------------------------- READY (docs section 5)

TEST(DecodeReady, DataIsAnythingNotStartingWithFluxUnderscore) {
  const std::string_view cases[] = {
      "",          "hello",     "x",          "FLUX",         "FLUX HELLO",
      "flux_ping", "Flux_PING", " FLUX_PING", "\0\1\2\xff"sv, "\xff\xfe FLUX_BYE",
      "FLUX-PING", "FLU_X",
  };
  for (std::string_view payload : cases) expect_ready(payload, ReadyRequest::kData);
}

TEST(DecodeReady, BinaryDataWithHighBytesIsData) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(255 - i));
  expect_ready(binary, ReadyRequest::kData);
}

TEST(DecodeReady, PingWithoutToken) {
  ReadyRequest r = decode_ready("FLUX_PING");
  ASSERT_STREQ(name(r.kind), "kPing");
  EXPECT_FALSE(r.ping_has_token);
  EXPECT_TRUE(r.ping_token.empty());
}

TEST(DecodeReady, PingWithToken) {
  const std::string payload = "FLUX_PING t-42";
  ReadyRequest r = decode_ready(payload);
  ASSERT_STREQ(name(r.kind), "kPing");
  EXPECT_TRUE(r.ping_has_token);
  EXPECT_EQ(r.ping_token, "t-42");
  // The token is echoed from the input block without a copy: it must view it.
  EXPECT_EQ(r.ping_token.data(), payload.data() + "FLUX_PING "sv.size());
}

TEST(DecodeReady, PingTokenIsEverythingAfterTheFirstSpace) {
  // docs/protocol.md 10.3: spaces included.
  ReadyRequest r = decode_ready("FLUX_PING tok with spaces");
  ASSERT_STREQ(name(r.kind), "kPing");
  EXPECT_EQ(r.ping_token, "tok with spaces");
  EXPECT_EQ(decode_ready("FLUX_PING  lead").ping_token, " lead");
  EXPECT_EQ(decode_ready("FLUX_PING trail ").ping_token, "trail ");
}

TEST(DecodeReady, PingTokenMayHoldAnyBytes) {
  const std::string payload = "FLUX_PING \x00\xff\x01"s;
  ReadyRequest r = decode_ready(payload);
  ASSERT_STREQ(name(r.kind), "kPing");
  EXPECT_EQ(r.ping_token, "\x00\xff\x01"s);
}

TEST(DecodeReady, Bye) {
  expect_ready("FLUX_BYE", ReadyRequest::kBye);
}

TEST(DecodeReady, HandshakesInReadyAreAlreadyReady) {
  for (std::string_view payload :
       {"FLUX_HELLO", "FLUX_HELLO 1", "FLUX_HELLO 2", "FLUX_RESUME 3f9c 1", "FLUX_RESUME"})
    expect_ready(payload, ReadyRequest::kAlreadyReady);
  expect_ready("FLUX_RESUME " + std::string(kId) + " 0", ReadyRequest::kAlreadyReady);
}

TEST(DecodeReady, OtherControlWordsAreUnknownCommands) {
  for (std::string_view payload :
       {"FLUX_FOO", "FLUX_", "FLUX_ ", "FLUX_PONG", "FLUX_PONG x", "FLUX_READY", "FLUX_ERROR x",
        "FLUX_PINGX", "FLUX_PING\tx", "FLUX_BYEBYE", "FLUX_HELLOX", "FLUX_RESUMEX", "FLUX_hello",
        "FLUX_ping", "FLUX_Bye"})
    expect_ready(payload, ReadyRequest::kUnknownCommand);
}

TEST(IsControl, ExactlyTheFiveBytePrefix) {
  EXPECT_TRUE(is_control("FLUX_"));
  EXPECT_TRUE(is_control("FLUX_anything"));
  EXPECT_FALSE(is_control(""));
  EXPECT_FALSE(is_control("FLUX"));
  EXPECT_FALSE(is_control("flux_"));
  EXPECT_FALSE(is_control(" FLUX_"));
}

// ------------------------------------------------------------- error codes

// docs/protocol.md section 6's list, in its order.
constexpr std::array<std::string_view, 10> kWireCodes = {
    "handshake-expected", "handshake-timeout",  "unsupported-version", "frame-too-large",
    "idle-timeout",       "unknown-command",    "already-ready",       "server-full",
    "server-shutdown",    "session-taken-over",
};

TEST(ErrorCodes, EachSpelledExactlyAsOnTheWire) {
  EXPECT_EQ(to_string(ErrorCode::kHandshakeExpected), "handshake-expected");
  EXPECT_EQ(to_string(ErrorCode::kHandshakeTimeout), "handshake-timeout");
  EXPECT_EQ(to_string(ErrorCode::kUnsupportedVersion), "unsupported-version");
  EXPECT_EQ(to_string(ErrorCode::kFrameTooLarge), "frame-too-large");
  EXPECT_EQ(to_string(ErrorCode::kIdleTimeout), "idle-timeout");
  EXPECT_EQ(to_string(ErrorCode::kUnknownCommand), "unknown-command");
  EXPECT_EQ(to_string(ErrorCode::kAlreadyReady), "already-ready");
  EXPECT_EQ(to_string(ErrorCode::kServerFull), "server-full");
  EXPECT_EQ(to_string(ErrorCode::kServerShutdown), "server-shutdown");
  EXPECT_EQ(to_string(ErrorCode::kSessionTakenOver), "session-taken-over");
}

TEST(ErrorCodes, CountCoversExactlyTheProtocolSet) {
  // kErrorCodeCount sizes the per-code metrics array: every index below it
  // must be a real code, and together they must be the protocol's set.
  ASSERT_EQ(kErrorCodeCount, static_cast<int>(kWireCodes.size()));
  std::set<std::string_view> spelled;
  for (int i = 0; i < kErrorCodeCount; ++i) spelled.insert(to_string(static_cast<ErrorCode>(i)));
  EXPECT_EQ(spelled, std::set<std::string_view>(kWireCodes.begin(), kWireCodes.end()));
}

TEST(ErrorCodes, AllButUnknownCommandAndAlreadyReadyAreFatal) {
  for (int i = 0; i < kErrorCodeCount; ++i) {
    const auto code = static_cast<ErrorCode>(i);
    const bool expected = code != ErrorCode::kUnknownCommand && code != ErrorCode::kAlreadyReady;
    EXPECT_EQ(is_fatal(code), expected) << to_string(code);
  }
  EXPECT_FALSE(is_fatal(ErrorCode::kUnknownCommand));
  EXPECT_FALSE(is_fatal(ErrorCode::kAlreadyReady));
  EXPECT_TRUE(is_fatal(ErrorCode::kFrameTooLarge));
  EXPECT_TRUE(is_fatal(ErrorCode::kSessionTakenOver));
}

// --------------------------------------------------- states, close reasons

TEST(ConnStates, NamesAreDistinctAndCoverTheCount) {
  EXPECT_EQ(to_string(ConnState::kConnecting), "connecting");
  EXPECT_EQ(to_string(ConnState::kHandshake), "handshake");
  EXPECT_EQ(to_string(ConnState::kReady), "ready");
  EXPECT_EQ(to_string(ConnState::kClosing), "closing");
  EXPECT_EQ(to_string(ConnState::kClosed), "closed");
  std::set<std::string_view> names;
  for (int i = 0; i < kConnStateCount; ++i) names.insert(to_string(static_cast<ConnState>(i)));
  EXPECT_EQ(names.size(), static_cast<size_t>(kConnStateCount));
  EXPECT_EQ(names.count("?"), 0u);
  EXPECT_EQ(kConnStateCount, static_cast<int>(ConnState::kClosed) + 1);
}

TEST(CloseReasons, NamesAreDistinctAndCoverTheCount) {
  EXPECT_EQ(to_string(CloseReason::kBye), "bye");
  EXPECT_EQ(to_string(CloseReason::kEof), "eof");
  EXPECT_EQ(to_string(CloseReason::kReset), "reset");
  EXPECT_EQ(to_string(CloseReason::kHandshakeTimeout), "handshake-timeout");
  EXPECT_EQ(to_string(CloseReason::kIdleTimeout), "idle-timeout");
  EXPECT_EQ(to_string(CloseReason::kProtocolError), "protocol-error");
  EXPECT_EQ(to_string(CloseReason::kServerFull), "server-full");
  EXPECT_EQ(to_string(CloseReason::kShutdown), "shutdown");
  EXPECT_EQ(to_string(CloseReason::kTakenOver), "taken-over");
  // kCloseReasonCount sizes closed_total: each index is a real, distinct label.
  std::set<std::string_view> names;
  for (int i = 0; i < kCloseReasonCount; ++i) names.insert(to_string(static_cast<CloseReason>(i)));
  EXPECT_EQ(names.size(), static_cast<size_t>(kCloseReasonCount));
  EXPECT_EQ(names.count("?"), 0u);
  EXPECT_EQ(kCloseReasonCount, static_cast<int>(CloseReason::kSlowConsumer) + 1);
}

TEST(ResumeResults, NamesAreDistinctAndCoverTheCount) {
  EXPECT_EQ(to_string(ResumeResult::kOk), "ok");
  EXPECT_EQ(to_string(ResumeResult::kUnknown), "unknown");
  EXPECT_EQ(to_string(ResumeResult::kBadSeq), "bad-seq");
  EXPECT_EQ(to_string(ResumeResult::kReplayGap), "replay-gap");
  EXPECT_EQ(to_string(ResumeResult::kTakenOver), "taken-over");
  std::set<std::string_view> names;
  for (int i = 0; i < kResumeResultCount; ++i)
    names.insert(to_string(static_cast<ResumeResult>(i)));
  EXPECT_EQ(names.size(), static_cast<size_t>(kResumeResultCount));
  EXPECT_EQ(names.count("?"), 0u);
  EXPECT_EQ(kResumeResultCount, static_cast<int>(ResumeResult::kTakenOver) + 1);
}

// --------------------------------------------------------------- session ids

TEST(SessionIds, TenThousandAreDistinctAndWellFormed) {
  // 10,000 ids span ~40 refills of the 4 KiB random buffer, so this also
  // checks the refill boundary neither repeats nor skips bytes badly.
  SessionIdGenerator generator;
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 10'000; ++i) {
    SessionId id = generator.next();
    const std::string_view text = view(id);
    ASSERT_EQ(text.size(), 32u);
    for (char c : text)
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << "id " << i << ": " << text;
    ASSERT_TRUE(is_well_formed_session_id(text)) << text;
    ASSERT_TRUE(seen.emplace(text).second) << "duplicate id " << text << " at " << i;
  }
}

// The first 4 hex digits name the node (--node-id, big-endian); the other
// 28 (112 bits) are random.
constexpr size_t kNodeDigits = 4;

TEST(SessionIds, FirstFourDigitsNameTheNode) {
  for (uint16_t node : {uint16_t{0}, uint16_t{42}, uint16_t{0xbeef}, uint16_t{65535}}) {
    SessionIdGenerator generator(node);
    char expected[5];
    snprintf(expected, sizeof expected, "%04x", unsigned{node});
    for (int i = 0; i < 100; ++i) {
      const std::string id(view(generator.next()));
      ASSERT_EQ(id.substr(0, kNodeDigits), expected) << id;
      ASSERT_TRUE(is_well_formed_session_id(id)) << id;
    }
  }
}

TEST(SessionIds, HexDigitsAreUniformlyUsed) {
  // 112 random bits per id: every nibble value is equally likely. With
  // 280,000 digits each value expects 17,500; +-10% is over 20 standard
  // deviations, so only a broken generator (constant, truncated, biased
  // bytes) fails this.
  SessionIdGenerator generator(0x1234);
  std::array<int, 16> counts{};
  for (int i = 0; i < 10'000; ++i) {
    SessionId id = generator.next();
    for (size_t p = kNodeDigits; p < id.size(); ++p) {
      const char c = id[p];
      ++counts[static_cast<size_t>(c <= '9' ? c - '0' : c - 'a' + 10)];
    }
  }
  for (size_t d = 0; d < counts.size(); ++d) {
    EXPECT_GT(counts[d], 15'750) << "hex digit " << d;
    EXPECT_LT(counts[d], 19'250) << "hex digit " << d;
  }
}

TEST(SessionIds, EveryPositionVaries) {
  // A generator that left some characters fixed (an unfilled byte) would
  // shrink the id space while still producing distinct ids.
  SessionIdGenerator generator;
  std::array<std::set<char>, 32> per_position;
  for (int i = 0; i < 2'000; ++i) {
    SessionId id = generator.next();
    for (size_t p = 0; p < id.size(); ++p) per_position[p].insert(id[p]);
  }
  for (size_t p = 0; p < kNodeDigits; ++p)
    EXPECT_EQ(per_position[p].size(), 1u) << "position " << p << " is the node id";
  for (size_t p = kNodeDigits; p < per_position.size(); ++p)
    EXPECT_EQ(per_position[p].size(), 16u) << "position " << p;
}

TEST(SessionIds, NoRandomByteIsUsedTwice) {
  // Distinct ids are not enough: ids sharing random bytes (overlapping
  // windows of the buffer, a byte spelled twice) are still distinct but
  // partly predictable from each other. Two checks, each with a false-alarm
  // probability far below 1e-9 for a sound generator:
  //  - every 56-bit half of the random part is unique across 10,000 ids;
  //  - neighbouring bytes inside an id are equal about 1 time in 256.
  SessionIdGenerator generator;
  std::unordered_set<std::string> halves;
  int equal_neighbours = 0, pairs = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id(view(generator.next()));
    ASSERT_TRUE(halves.insert(id.substr(kNodeDigits, 14)).second)
        << "id " << i << " reuses random bytes";
    ASSERT_TRUE(halves.insert(id.substr(kNodeDigits + 14, 14)).second)
        << "id " << i << " reuses random bytes";
    for (size_t b = kNodeDigits; b + 4 <= id.size(); b += 2, ++pairs)
      equal_neighbours += id.compare(b, 2, id, b + 2, 2) == 0 ? 1 : 0;
  }
  EXPECT_LT(equal_neighbours, 2 * pairs / 256) << "expected about " << pairs / 256;
}

TEST(SessionIds, TwoGeneratorsDoNotRepeatEachOther) {
  SessionIdGenerator a, b;
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 1'000; ++i) {
    ASSERT_TRUE(seen.emplace(view(a.next())).second);
    ASSERT_TRUE(seen.emplace(view(b.next())).second);
  }
}

TEST(SessionIds, WellFormedMeansExactly32LowercaseHex) {
  EXPECT_TRUE(is_well_formed_session_id(kId));
  EXPECT_TRUE(is_well_formed_session_id("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(is_well_formed_session_id(std::string(32, '0')));
  EXPECT_TRUE(is_well_formed_session_id(std::string(32, 'f')));

  EXPECT_FALSE(is_well_formed_session_id(""));
  EXPECT_FALSE(is_well_formed_session_id(kId.substr(1)));           // 31
  EXPECT_FALSE(is_well_formed_session_id(std::string(kId) + "0"));  // 33
  EXPECT_FALSE(is_well_formed_session_id(std::string(64, 'a')));
  EXPECT_FALSE(is_well_formed_session_id("3F9C0A1B2C3D4E5F60718293A4B5C6E1"));  // uppercase
  EXPECT_FALSE(is_well_formed_session_id("3f9c0a1b2c3d4e5f60718293a4b5c6eG"));
  EXPECT_FALSE(is_well_formed_session_id("3f9c0a1b2c3d4e5f60718293a4b5c6eg"));
  EXPECT_FALSE(is_well_formed_session_id("3f9c0a1b2c3d4e5f60718293a4b5c6e "));
  EXPECT_FALSE(is_well_formed_session_id("3f9c0a1b-c3d4e5f60718293a4b5c6e1"));
  EXPECT_FALSE(is_well_formed_session_id("3f9c0a1b2c3d4e5f60718293a4b5c6e\0"sv));
  // One character past each end of the two hex ranges.
  for (char c : {'/', ':', '`', 'g', 'A', 'F'}) {
    std::string id(kId);
    id[7] = c;
    EXPECT_FALSE(is_well_formed_session_id(id)) << c;
  }
}

}  // namespace
}  // namespace flux
