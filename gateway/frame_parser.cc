#include "gateway/frame_parser.h"

namespace flux {

ParsedFrame parse_frame(std::span<const std::byte> unparsed, uint32_t max_frame) {
  if (unparsed.size() < kFrameHeaderSize) return {ParsedFrame::kNeedMore, 0, kFrameHeaderSize, {}};
  const uint32_t length = decode_frame_header(unparsed.data());
  const size_t frame_size = kFrameHeaderSize + size_t{length};
  if (length > max_frame) return {ParsedFrame::kTooLarge, length, frame_size, {}};
  if (unparsed.size() < frame_size) return {ParsedFrame::kNeedMore, length, frame_size, {}};
  const auto* payload = reinterpret_cast<const char*>(unparsed.data() + kFrameHeaderSize);
  return {ParsedFrame::kFrame, length, frame_size, std::string_view(payload, length)};
}

void encode_frame_header(uint32_t payload_length, std::byte* out) {
  out[0] = std::byte(payload_length >> 24);
  out[1] = std::byte(payload_length >> 16);
  out[2] = std::byte(payload_length >> 8);
  out[3] = std::byte(payload_length);
}

}  // namespace flux
