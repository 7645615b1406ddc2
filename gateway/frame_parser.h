#pragma once
// Frame parsing (docs/protocol.md section 1): a u32 big-endian length, then that
// many payload bytes.
//
//   +--------+--------+--------+--------+---------------------+
//   |        length (big-endian u32)    | payload: length B   |
//   +--------+--------+--------+--------+---------------------+
//
// parse_frame looks at the unparsed bytes of a read buffer and tells whether
// a whole frame is there. It never copies: a complete frame's payload is a
// view into the caller's buffer. The caller loops, advancing by frame_size,
// to take every frame of a coalesced read; a partial header or payload
// answers kNeedMore with the total size still required.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace flux {

inline constexpr size_t kFrameHeaderSize = 4;

struct ParsedFrame {
  enum Kind : uint8_t {
    kNeedMore,  // not a whole frame yet; frame_size = bytes needed (>= 4 once known)
    kFrame,     // a whole frame: payload views the input
    kTooLarge,  // header announces more than max_frame; payload_length tells how much
  } kind;
  uint32_t payload_length = 0;
  size_t frame_size = 0;  // header + payload
  std::string_view payload;
};

ParsedFrame parse_frame(std::span<const std::byte> unparsed, uint32_t max_frame);

// The payload length a 4-byte header announces (inline: the replay buffer
// reads it per frame it trims).
inline uint32_t decode_frame_header(const std::byte* header) noexcept {
  return (uint32_t(header[0]) << 24) | (uint32_t(header[1]) << 16) | (uint32_t(header[2]) << 8) |
         uint32_t(header[3]);
}

// Writes the 4-byte header for a payload of the given length.
void encode_frame_header(uint32_t payload_length, std::byte* out);

}  // namespace flux
