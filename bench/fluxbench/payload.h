#pragma once
// The data payload fluxbench sends, and the check of every echo.
//
//   0                 8                 16                          size
//   +-----------------+-----------------+----------------------------+
//   | counter u64 BE  | send_ns u64 BE  | filler: f(counter), bytes  |
//   +-----------------+-----------------+----------------------------+
//
// - counter: per connection, from 1; echoes must come back in this order.
//   Its first byte is 0 (counters stay below 2^56), so a payload never
//   starts with "FLUX_" and is always a data frame.
// - send_ns: the monotonic time the frame was meant to leave (open loop: its
//   scheduled time; closed loop: when it was written).
// - filler: a pseudo-random stream seeded by the counter, so a duplicated,
//   swapped or corrupted echo differs somewhere in every byte range.
//
// A frame on the wire is the 4-byte big-endian length, then the payload.
//
// Thread contract: free functions, any thread.

#include <cstddef>
#include <cstdint>

namespace flux::bench {

inline constexpr uint32_t kPayloadHeader = 16;
inline constexpr size_t kFrameHeader = 4;

// Writes the whole frame (length + payload) for `counter` at `out`, which
// must have kFrameHeader + size bytes.
void write_frame(uint8_t* out, uint32_t size, uint64_t counter, uint64_t send_ns) noexcept;

// True if `payload` (`len` bytes) is exactly the payload write_frame made
// for (size, counter, send_ns).
bool payload_matches(const uint8_t* payload, size_t len, uint32_t size, uint64_t counter,
                     uint64_t send_ns) noexcept;

void put_u32_be(uint8_t* out, uint32_t v) noexcept;
uint32_t get_u32_be(const uint8_t* in) noexcept;

}  // namespace flux::bench
