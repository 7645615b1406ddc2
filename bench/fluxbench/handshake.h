#pragma once
// The client side of the handshake (PROTOCOL.md section 4) and the goodbye.
//
//   C: 00 00 00 0a "FLUX_HELLO"
//   S: 00 00 00 2d "FLUX_READY <32 lowercase hex> 0"
//   ... data ...
//   C: 00 00 00 08 "FLUX_BYE"
//   S: 00 00 00 08 "FLUX_BYE", then the server closes
//
// Thread contract: free functions, any thread.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace flux::bench {

// The whole FLUX_HELLO / FLUX_BYE frames, header included.
std::span<const uint8_t> hello_frame() noexcept;
std::span<const uint8_t> bye_frame() noexcept;

// True if `payload` is exactly "FLUX_READY <32 lowercase hex> 0".
bool is_ready_reply(std::string_view payload) noexcept;

// True if the payload starts with "FLUX_" (a control message).
bool is_control(std::string_view payload) noexcept;

// A short printable label for an unexpected control message, for tallies:
// its first two words ("FLUX_ERROR server-full"), at most 48 characters.
std::string control_label(std::string_view payload);

}  // namespace flux::bench
