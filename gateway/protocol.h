#pragma once
// The Flux protocol's decisions (docs/protocol.md): the pure decoding of
// control messages; its named values (states, error codes, close reasons,
// resume results) are in common/protocol_enums.h.
// Nothing here touches a socket; the Connection applies the decisions.

#include <cstdint>
#include <string_view>

#include "common/protocol_enums.h"

namespace flux {

// All but unknown-command and already-ready end the connection.
bool is_fatal(ErrorCode code);

// A payload starting with these five bytes is a control message.
inline constexpr std::string_view kControlPrefix = "FLUX_";
inline bool is_control(std::string_view payload) {
  return payload.starts_with(kControlPrefix);
}

// What the first frame of a connection asks for (docs/protocol.md section 4).
struct HandshakeRequest {
  enum Kind : uint8_t { kHello, kBadVersion, kResume, kNotHandshake } kind;
  std::string_view session_id;  // kResume only, as sent (not yet validated)
  uint64_t last_seq = 0;        // kResume only
};
HandshakeRequest decode_handshake(std::string_view payload);

// What a frame received in READY asks for (docs/protocol.md section 5).
struct ReadyRequest {
  enum Kind : uint8_t { kData, kPing, kBye, kAlreadyReady, kUnknownCommand } kind;
  std::string_view ping_token;  // kPing: everything after "FLUX_PING ", may be empty
  bool ping_has_token = false;
};
ReadyRequest decode_ready(std::string_view payload);

}  // namespace flux
