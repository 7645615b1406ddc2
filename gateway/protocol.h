#pragma once
// The Flux protocol's vocabulary (docs/protocol.md): connection states,
// error codes, close reasons, and the pure decoding of control messages.
// Nothing here touches a socket; the Connection applies the decisions.

#include <cstdint>
#include <string_view>

namespace flux {

// Section 3 of the protocol, one value per state.
enum class ConnState : uint8_t { kConnecting, kHandshake, kReady, kClosing, kClosed };
inline constexpr int kConnStateCount = 5;
std::string_view to_string(ConnState state);

// The exact error codes of section 5, in wire spelling via to_string.
enum class ErrorCode : uint8_t {
  kHandshakeExpected,
  kHandshakeTimeout,
  kUnsupportedVersion,
  kFrameTooLarge,
  kIdleTimeout,
  kUnknownCommand,
  kAlreadyReady,
  kServerFull,
  kServerShutdown,
  kSessionTakenOver,
};
inline constexpr int kErrorCodeCount = 10;
std::string_view to_string(ErrorCode code);
// All but unknown-command and already-ready end the connection.
bool is_fatal(ErrorCode code);

// Why a connection ended: the label of flux_connections_closed_total.
enum class CloseReason : uint8_t {
  kBye,
  kEof,
  kReset,
  kHandshakeTimeout,
  kIdleTimeout,
  kProtocolError,
  kServerFull,
  kShutdown,
  kTakenOver,     // its session was resumed on another connection
  kSlowConsumer,  // queued output made no progress for --write-timeout
};
inline constexpr int kCloseReasonCount = 10;
std::string_view to_string(CloseReason reason);

// The outcome of a FLUX_RESUME (section 7): the label of flux_resumes_total.
enum class ResumeResult : uint8_t { kOk, kUnknown, kBadSeq, kReplayGap, kTakenOver };
inline constexpr int kResumeResultCount = 5;
std::string_view to_string(ResumeResult result);

// A payload starting with these five bytes is a control message.
inline constexpr std::string_view kControlPrefix = "FLUX_";
inline bool is_control(std::string_view payload) {
  return payload.starts_with(kControlPrefix);
}

// What the first frame of a connection asks for (section 4).
struct HandshakeRequest {
  enum Kind : uint8_t { kHello, kBadVersion, kResume, kNotHandshake } kind;
  std::string_view session_id;  // kResume only, as sent (not yet validated)
  uint64_t last_seq = 0;        // kResume only
};
HandshakeRequest decode_handshake(std::string_view payload);

// What a frame received in READY asks for (section 5).
struct ReadyRequest {
  enum Kind : uint8_t { kData, kPing, kBye, kAlreadyReady, kUnknownCommand } kind;
  std::string_view ping_token;  // kPing: everything after "FLUX_PING ", may be empty
  bool ping_has_token = false;
};
ReadyRequest decode_ready(std::string_view payload);

}  // namespace flux
