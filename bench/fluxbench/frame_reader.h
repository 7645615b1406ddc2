#pragma once
// FrameReader: reassembles one connection's incoming frames across reads.
//
// Reads go into a scratch buffer shared by all of a worker's connections;
// only a partial frame left at the end of a read is kept per connection:
//
//   scratch: [ carry (restored) | bytes of this read() ..... ]
//              \_ restore()       \_ read into scratch + carry length
//   consume(): complete frames -> on_frame(payload, len); the tail that is
//              not a whole frame -> carry (at most one frame's worth)
//
// An idle connection thus holds no input buffer at all.
//
// Thread contract: owned by one worker thread.

#include <cstdint>
#include <cstring>
#include <vector>

#include "bench/fluxbench/payload.h"

namespace flux::bench {

class FrameReader {
 public:
  enum class Result { kOk, kTooLarge, kStopped };

  // Copies the kept partial frame to the start of `scratch`; returns its length.
  size_t restore(uint8_t* scratch) const noexcept {
    if (!carry_.empty()) std::memcpy(scratch, carry_.data(), carry_.size());
    return carry_.size();
  }

  // Calls on_frame(const uint8_t* payload, uint32_t len) for every complete
  // frame in data[0, len); on_frame returns false to stop (the connection is
  // going away). A header announcing more than `max_payload` is kTooLarge.
  template <typename OnFrame>
  Result consume(const uint8_t* data, size_t len, uint32_t max_payload, OnFrame&& on_frame) {
    size_t pos = 0;
    while (len - pos >= kFrameHeader) {
      const uint32_t payload_len = get_u32_be(data + pos);
      if (payload_len > max_payload) return Result::kTooLarge;
      if (len - pos - kFrameHeader < payload_len) break;
      if (!on_frame(data + pos + kFrameHeader, payload_len)) return Result::kStopped;
      pos += kFrameHeader + payload_len;
    }
    carry_.assign(data + pos, data + len);
    return Result::kOk;
  }

  void clear() noexcept { carry_.clear(); }

 private:
  std::vector<uint8_t> carry_;
};

}  // namespace flux::bench
