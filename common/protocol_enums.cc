#include "common/protocol_enums.h"

namespace flux {

std::string_view to_string(ConnState state) {
  switch (state) {
    case ConnState::kConnecting:
      return "connecting";
    case ConnState::kHandshake:
      return "handshake";
    case ConnState::kReady:
      return "ready";
    case ConnState::kClosing:
      return "closing";
    case ConnState::kClosed:
      return "closed";
  }
  return "?";
}

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kHandshakeExpected:
      return "handshake-expected";
    case ErrorCode::kHandshakeTimeout:
      return "handshake-timeout";
    case ErrorCode::kUnsupportedVersion:
      return "unsupported-version";
    case ErrorCode::kFrameTooLarge:
      return "frame-too-large";
    case ErrorCode::kIdleTimeout:
      return "idle-timeout";
    case ErrorCode::kUnknownCommand:
      return "unknown-command";
    case ErrorCode::kAlreadyReady:
      return "already-ready";
    case ErrorCode::kServerFull:
      return "server-full";
    case ErrorCode::kServerShutdown:
      return "server-shutdown";
    case ErrorCode::kSessionTakenOver:
      return "session-taken-over";
  }
  return "?";
}

std::string_view to_string(CloseReason reason) {
  switch (reason) {
    case CloseReason::kBye:
      return "bye";
    case CloseReason::kEof:
      return "eof";
    case CloseReason::kReset:
      return "reset";
    case CloseReason::kHandshakeTimeout:
      return "handshake-timeout";
    case CloseReason::kIdleTimeout:
      return "idle-timeout";
    case CloseReason::kProtocolError:
      return "protocol-error";
    case CloseReason::kServerFull:
      return "server-full";
    case CloseReason::kShutdown:
      return "shutdown";
    case CloseReason::kTakenOver:
      return "taken-over";
    case CloseReason::kSlowConsumer:
      return "slow-consumer";
  }
  return "?";
}

std::string_view to_string(ResumeResult result) {
  switch (result) {
    case ResumeResult::kOk:
      return "ok";
    case ResumeResult::kUnknown:
      return "unknown";
    case ResumeResult::kBadSeq:
      return "bad-seq";
    case ResumeResult::kReplayGap:
      return "replay-gap";
    case ResumeResult::kTakenOver:
      return "taken-over";
  }
  return "?";
}

}  // namespace flux
