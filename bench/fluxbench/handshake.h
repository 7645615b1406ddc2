#pragma once
// The client side of the handshake (docs/protocol.md section 4) and the goodbye.
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

// The session id of a valid FLUX_READY reply (is_ready_reply() first).
std::string_view ready_session_id(std::string_view payload) noexcept;

// --churn: the whole "FLUX_RESUME <session-id> <last-seq>" frame, header included.
std::string resume_frame(std::string_view session_id, uint64_t last_seq);

// --churn: true, with `seq` set, if `payload` is exactly
// "FLUX_READY <session_id> <seq>" (seq decimal, no sign or leading zero).
bool parse_resume_reply(std::string_view payload, std::string_view session_id,
                        uint64_t& seq) noexcept;

// --proxy-v2: the PROXY protocol v2 header a balancer would send ahead of
// this connection's first byte (command PROXY, TCP over IPv4, source = the
// socket's local address, destination = its peer). Empty if the socket's
// addresses cannot be read or are not IPv4.
std::string proxy_v2_header(int fd);

// True if the payload starts with "FLUX_" (a control message).
bool is_control(std::string_view payload) noexcept;

// A short printable label for an unexpected control message, for tallies:
// its first two words ("FLUX_ERROR server-full"), at most 48 characters.
std::string control_label(std::string_view payload);

}  // namespace flux::bench
