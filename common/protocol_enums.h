#pragma once
// The Flux protocol's named values (docs/protocol.md): connection states,
// error codes, close reasons and resume results, with their wire and label
// spellings. They live below both layers: the gateway acts on them, the
// metrics use them as label values (metrics/metric_table.h).
//
// Thread contract: pure values and functions.

#include <cstdint>
#include <string_view>

namespace flux {

// docs/protocol.md section 3, one value per state.
enum class ConnState : uint8_t { kConnecting, kHandshake, kReady, kClosing, kClosed };
inline constexpr int kConnStateCount = 5;
// The states a connection can be counted in: CLOSED connections are gone.
inline constexpr int kLiveConnStateCount = kConnStateCount - 1;
std::string_view to_string(ConnState state);

// The exact error codes of docs/protocol.md section 6, in wire spelling via to_string.
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

// The outcome of a FLUX_RESUME (docs/protocol.md section 8): the label of flux_resumes_total.
enum class ResumeResult : uint8_t { kOk, kUnknown, kBadSeq, kReplayGap, kTakenOver };
inline constexpr int kResumeResultCount = 5;
std::string_view to_string(ResumeResult result);

}  // namespace flux
