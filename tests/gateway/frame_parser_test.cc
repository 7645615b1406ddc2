// parse_frame / encode_frame_header (docs/protocol.md section 1).
//
// TCP delivers bytes, not frames, so most tests cut one byte stream in every
// way a read() could and check the parser reassembles the same frames. The
// expected bytes are built by hand here (not with encode_frame_header) so the
// encoder and the parser cannot agree on a shared mistake.

#include "gateway/frame_parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flux {
namespace {

using Bytes = std::vector<std::byte>;

void append_header(Bytes& out, uint32_t length) {
  out.push_back(std::byte(length >> 24));
  out.push_back(std::byte((length >> 16) & 0xff));
  out.push_back(std::byte((length >> 8) & 0xff));
  out.push_back(std::byte(length & 0xff));
}

void append_frame(Bytes& out, std::string_view payload) {
  append_header(out, static_cast<uint32_t>(payload.size()));
  for (char c : payload) out.push_back(std::byte(static_cast<unsigned char>(c)));
}

Bytes frame(std::string_view payload) {
  Bytes out;
  append_frame(out, payload);
  return out;
}

std::span<const std::byte> prefix(const Bytes& bytes, size_t n) {
  return {bytes.data(), n};
}

// What a connection does with one read buffer: take every whole frame.
std::vector<std::string> take_all(std::span<const std::byte> buffer, uint32_t max_frame,
                                  size_t& consumed) {
  std::vector<std::string> payloads;
  consumed = 0;
  for (;;) {
    ParsedFrame f = parse_frame(buffer.subspan(consumed), max_frame);
    if (f.kind != ParsedFrame::kFrame) break;
    payloads.emplace_back(f.payload);
    consumed += f.frame_size;
  }
  return payloads;
}

constexpr uint32_t kMax = 65536;

// ------------------------------------------------------------- partial input

TEST(FrameParser, EmptyInputNeedsAHeader) {
  ParsedFrame f = parse_frame({}, kMax);
  EXPECT_EQ(f.kind, ParsedFrame::kNeedMore);
  EXPECT_EQ(f.frame_size, kFrameHeaderSize);
}

TEST(FrameParser, ByteByByteNeedsMoreUntilTheLastByte) {
  const std::string payload = "hello, byte by byte";
  const Bytes bytes = frame(payload);
  for (size_t n = 0; n < bytes.size(); ++n) {
    ParsedFrame f = parse_frame(prefix(bytes, n), kMax);
    ASSERT_EQ(f.kind, ParsedFrame::kNeedMore) << "after " << n << " bytes";
    if (n < kFrameHeaderSize) {
      EXPECT_EQ(f.frame_size, kFrameHeaderSize) << n;
    } else {
      // Once the header is in, the parser knows the whole size it waits for.
      EXPECT_EQ(f.frame_size, bytes.size()) << n;
      EXPECT_EQ(f.payload_length, payload.size()) << n;
    }
  }
  ParsedFrame f = parse_frame(bytes, kMax);
  ASSERT_EQ(f.kind, ParsedFrame::kFrame);
  EXPECT_EQ(f.payload, payload);
  EXPECT_EQ(f.payload_length, payload.size());
  EXPECT_EQ(f.frame_size, bytes.size());
}

TEST(FrameParser, HeaderSplitAtEveryOffset) {
  // A whole first frame, then the second frame's header cut after 1, 2 or 3
  // bytes: the first frame is taken, the second waits for the rest.
  for (size_t split = 1; split < kFrameHeaderSize; ++split) {
    Bytes stream = frame("first");
    const size_t first_size = stream.size();
    append_frame(stream, std::string(300, 'x'));  // 300 = 0x012c: two non-zero header bytes
    const size_t cut = first_size + split;

    size_t consumed = 0;
    auto payloads = take_all(prefix(stream, cut), kMax, consumed);
    ASSERT_EQ(payloads, std::vector<std::string>{"first"}) << "split " << split;
    ASSERT_EQ(consumed, first_size);
    ParsedFrame waiting = parse_frame(prefix(stream, cut).subspan(consumed), kMax);
    EXPECT_EQ(waiting.kind, ParsedFrame::kNeedMore) << split;
    EXPECT_EQ(waiting.frame_size, kFrameHeaderSize) << split;

    ParsedFrame done = parse_frame(std::span<const std::byte>(stream).subspan(consumed), kMax);
    ASSERT_EQ(done.kind, ParsedFrame::kFrame) << split;
    EXPECT_EQ(done.payload, std::string(300, 'x')) << split;
  }
}

TEST(FrameParser, PartialPayloadReportsTheTotalSizeNeeded) {
  const Bytes bytes = frame(std::string(1000, 'p'));
  ParsedFrame f = parse_frame(prefix(bytes, 500), kMax);
  EXPECT_EQ(f.kind, ParsedFrame::kNeedMore);
  EXPECT_EQ(f.payload_length, 1000u);
  EXPECT_EQ(f.frame_size, 1004u);
  EXPECT_TRUE(f.payload.empty()) << "no view of an incomplete payload";
}

// ---------------------------------------------------------- coalesced input

TEST(FrameParser, CoalescedFramesAreTakenOneAfterAnother) {
  const std::vector<std::string> sent = {"one",         "", "three", std::string(5000, 'z'),
                                         "FLUX_PING 7", ""};
  Bytes stream;
  for (const auto& p : sent) append_frame(stream, p);

  size_t consumed = 0;
  EXPECT_EQ(take_all(stream, kMax, consumed), sent);
  EXPECT_EQ(consumed, stream.size()) << "every byte belongs to exactly one frame";
}

TEST(FrameParser, CoalescedFramesWithATrailingPartialFrame) {
  Bytes stream = frame("a");
  append_frame(stream, "bb");
  const size_t whole = stream.size();
  append_frame(stream, "ccc");
  stream.resize(stream.size() - 1);  // last frame is one byte short

  size_t consumed = 0;
  EXPECT_EQ(take_all(stream, kMax, consumed), (std::vector<std::string>{"a", "bb"}));
  EXPECT_EQ(consumed, whole);
  ParsedFrame rest = parse_frame(std::span<const std::byte>(stream).subspan(consumed), kMax);
  EXPECT_EQ(rest.kind, ParsedFrame::kNeedMore);
  EXPECT_EQ(rest.frame_size, 7u);
}

// A deterministic stream of many frames cut into reads of random sizes, as a
// connection would see it: append each read, take what is whole, keep the rest.
TEST(FrameParser, RandomReadBoundariesReassembleTheSameFrames) {
  std::mt19937 rng(20240601);
  std::vector<std::string> sent;
  Bytes stream;
  for (int i = 0; i < 500; ++i) {
    std::string payload(std::uniform_int_distribution<size_t>(0, 700)(rng), '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    append_frame(stream, payload);
    sent.push_back(std::move(payload));
  }

  std::vector<std::string> received;
  Bytes buffer;
  for (size_t at = 0; at < stream.size();) {
    size_t n = std::min(stream.size() - at, std::uniform_int_distribution<size_t>(1, 900)(rng));
    buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(at),
                  stream.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    size_t consumed = 0;
    for (auto& p : take_all(buffer, kMax, consumed)) received.push_back(std::move(p));
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(consumed));
  }
  EXPECT_TRUE(buffer.empty());
  ASSERT_EQ(received.size(), sent.size());
  EXPECT_EQ(received, sent);
}

// ------------------------------------------------------------ zero and max

TEST(FrameParser, ZeroLengthFrameIsAWholeFrameOfFourBytes) {
  Bytes bytes = frame("");
  append_frame(bytes, "next");
  ParsedFrame f = parse_frame(bytes, kMax);
  ASSERT_EQ(f.kind, ParsedFrame::kFrame);
  EXPECT_EQ(f.payload_length, 0u);
  EXPECT_EQ(f.frame_size, kFrameHeaderSize);
  EXPECT_TRUE(f.payload.empty());
}

TEST(FrameParser, ZeroLengthFrameIsLegalEvenWithMaxFrameZero) {
  ParsedFrame f = parse_frame(frame(""), 0);
  EXPECT_EQ(f.kind, ParsedFrame::kFrame);
  Bytes one = frame("x");
  EXPECT_EQ(parse_frame(one, 0).kind, ParsedFrame::kTooLarge);
}

TEST(FrameParser, ExactlyMaxFrameIsAccepted) {
  for (uint32_t max : {1u, 1000u, kMax}) {
    const Bytes bytes = frame(std::string(max, 'm'));
    ParsedFrame f = parse_frame(bytes, max);
    ASSERT_EQ(f.kind, ParsedFrame::kFrame) << max;
    EXPECT_EQ(f.payload_length, max);
    EXPECT_EQ(f.payload.size(), max);
    EXPECT_EQ(f.frame_size, size_t{max} + kFrameHeaderSize);
  }
}

TEST(FrameParser, OneOverMaxIsTooLargeFromTheHeaderAlone) {
  for (uint32_t max : {0u, 1000u, kMax}) {
    Bytes header;
    append_header(header, max + 1);
    // Only the four header bytes: the payload is never needed to decide.
    ParsedFrame f = parse_frame(header, max);
    ASSERT_EQ(f.kind, ParsedFrame::kTooLarge) << max;
    EXPECT_EQ(f.payload_length, max + 1);
    EXPECT_EQ(f.frame_size, size_t{max} + 1 + kFrameHeaderSize);
    EXPECT_TRUE(f.payload.empty());
  }
}

TEST(FrameParser, TooLargeNeedsTheWholeHeaderFirst) {
  Bytes header;
  append_header(header, kMax + 1);
  for (size_t n = 0; n < kFrameHeaderSize; ++n)
    EXPECT_EQ(parse_frame(prefix(header, n), kMax).kind, ParsedFrame::kNeedMore) << n;
}

TEST(FrameParser, LargestHeaderValueIsTooLargeWithoutOverflow) {
  Bytes header;
  append_header(header, std::numeric_limits<uint32_t>::max());
  ParsedFrame f = parse_frame(header, kMax);
  ASSERT_EQ(f.kind, ParsedFrame::kTooLarge);
  EXPECT_EQ(f.payload_length, std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(f.frame_size, size_t{std::numeric_limits<uint32_t>::max()} + kFrameHeaderSize);
}

// ----------------------------------------------------------------- no copy

TEST(FrameParser, PayloadViewsTheInputBytes) {
  Bytes stream = frame("abc");
  append_frame(stream, "defgh");
  ParsedFrame first = parse_frame(stream, kMax);
  ASSERT_EQ(first.kind, ParsedFrame::kFrame);
  EXPECT_EQ(static_cast<const void*>(first.payload.data()),
            static_cast<const void*>(stream.data() + kFrameHeaderSize));

  ParsedFrame second =
      parse_frame(std::span<const std::byte>(stream).subspan(first.frame_size), kMax);
  ASSERT_EQ(second.kind, ParsedFrame::kFrame);
  EXPECT_EQ(static_cast<const void*>(second.payload.data()),
            static_cast<const void*>(stream.data() + first.frame_size + kFrameHeaderSize));
  EXPECT_EQ(second.payload, "defgh");
}

// -------------------------------------------------------- header encoding

TEST(FrameHeader, EncodesBigEndian) {
  struct Case {
    uint32_t length;
    std::array<uint8_t, 4> wire;
  };
  const Case cases[] = {
      {0, {0x00, 0x00, 0x00, 0x00}},          {5, {0x00, 0x00, 0x00, 0x05}},
      {0x2d, {0x00, 0x00, 0x00, 0x2d}},       {0x0100, {0x00, 0x00, 0x01, 0x00}},
      {65536, {0x00, 0x01, 0x00, 0x00}},      {0x01020304, {0x01, 0x02, 0x03, 0x04}},
      {0x80000001, {0x80, 0x00, 0x00, 0x01}}, {0xdeadbeef, {0xde, 0xad, 0xbe, 0xef}},
      {0xffffffff, {0xff, 0xff, 0xff, 0xff}},
  };
  for (const Case& c : cases) {
    std::array<std::byte, 4> out{};
    encode_frame_header(c.length, out.data());
    for (size_t i = 0; i < 4; ++i)
      EXPECT_EQ(std::to_integer<uint8_t>(out[i]), c.wire[i])
          << std::hex << c.length << " byte " << i;
  }
}

TEST(FrameHeader, EncodeWritesExactlyFourBytes) {
  std::array<std::byte, 8> out;
  out.fill(std::byte{0xaa});
  encode_frame_header(0x01020304, out.data() + 2);
  EXPECT_EQ(out[0], std::byte{0xaa});
  EXPECT_EQ(out[1], std::byte{0xaa});
  EXPECT_EQ(out[6], std::byte{0xaa});
  EXPECT_EQ(out[7], std::byte{0xaa});
}

// Bytes >= 0x80 in every position catch sign extension on the way back.
TEST(FrameHeader, RoundTripsThroughTheParser) {
  const uint32_t lengths[] = {
      0,     1,          0x7f,       0x80,       0xff,       0x100,      0x8080,     0xffff,
      65536, 0x00800000, 0x01000000, 0x7fffffff, 0x80000000, 0xdeadbeef, 0xfffffffe, 0xffffffff};
  for (uint32_t length : lengths) {
    std::array<std::byte, 4> header{};
    encode_frame_header(length, header.data());

    ParsedFrame open = parse_frame(header, std::numeric_limits<uint32_t>::max());
    EXPECT_EQ(open.payload_length, length) << std::hex << length;
    EXPECT_EQ(open.frame_size, size_t{length} + kFrameHeaderSize) << std::hex << length;
    EXPECT_EQ(open.kind, length == 0 ? ParsedFrame::kFrame : ParsedFrame::kNeedMore);

    if (length > 0) {
      ParsedFrame tight = parse_frame(header, length - 1);
      EXPECT_EQ(tight.kind, ParsedFrame::kTooLarge) << std::hex << length;
      EXPECT_EQ(tight.payload_length, length);
    }
  }
}

}  // namespace
}  // namespace flux
