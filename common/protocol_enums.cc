#include "common/protocol_enums.h"

#include <iterator>

#include "common/enum_names.h"

// The spellings of docs/protocol.md (states: section 3, error codes: section
// 6) and of the metric labels (docs/stats.md), one table per enum.

namespace flux {
namespace {

constexpr std::string_view kConnStateNames[] = {"connecting", "handshake", "ready", "closing",
                                                "closed"};
static_assert(std::size(kConnStateNames) == kConnStateCount &&
              static_cast<int>(ConnState::kClosed) + 1 == kConnStateCount);

constexpr std::string_view kErrorCodeNames[] = {
    "handshake-expected", "handshake-timeout", "unsupported-version", "frame-too-large",
    "idle-timeout",       "unknown-command",   "already-ready",       "server-full",
    "server-shutdown",    "session-taken-over"};
static_assert(std::size(kErrorCodeNames) == kErrorCodeCount &&
              static_cast<int>(ErrorCode::kSessionTakenOver) + 1 == kErrorCodeCount);

constexpr std::string_view kCloseReasonNames[] = {
    "bye",         "eof",      "reset",      "handshake-timeout", "idle-timeout", "protocol-error",
    "server-full", "shutdown", "taken-over", "slow-consumer"};
static_assert(std::size(kCloseReasonNames) == kCloseReasonCount &&
              static_cast<int>(CloseReason::kSlowConsumer) + 1 == kCloseReasonCount);

constexpr std::string_view kResumeResultNames[] = {"ok", "unknown", "bad-seq", "replay-gap",
                                                   "taken-over"};
static_assert(std::size(kResumeResultNames) == kResumeResultCount &&
              static_cast<int>(ResumeResult::kTakenOver) + 1 == kResumeResultCount);

}  // namespace

std::string_view to_string(ConnState state) {
  return name_in(kConnStateNames, state);
}

std::string_view to_string(ErrorCode code) {
  return name_in(kErrorCodeNames, code);
}

std::string_view to_string(CloseReason reason) {
  return name_in(kCloseReasonNames, reason);
}

std::string_view to_string(ResumeResult result) {
  return name_in(kResumeResultNames, result);
}

}  // namespace flux
