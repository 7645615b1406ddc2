#include "gateway/protocol.h"

#include <charconv>

namespace flux {
namespace {

// Splits "WORD rest" at the first space. rest is empty when there is none;
// has_rest tells "FLUX_PING" from "FLUX_PING ".
struct Split {
  std::string_view word, rest;
  bool has_rest;
};
Split split_word(std::string_view text) {
  auto space = text.find(' ');
  if (space == std::string_view::npos) return {text, {}, false};
  return {text.substr(0, space), text.substr(space + 1), true};
}

bool parse_decimal(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

HandshakeRequest decode_hello(const Split& parts) {
  if (!parts.has_rest) return {HandshakeRequest::kHello, {}, 0};
  if (parts.rest.empty() || parts.rest.find(' ') != std::string_view::npos)
    return {HandshakeRequest::kNotHandshake, {}, 0};
  if (parts.rest == "1") return {HandshakeRequest::kHello, {}, 0};
  return {HandshakeRequest::kBadVersion, {}, 0};
}

HandshakeRequest decode_resume(const Split& parts) {
  Split args = split_word(parts.rest);
  uint64_t seq = 0;
  if (!parts.has_rest || !args.has_rest || args.word.empty() ||
      args.rest.find(' ') != std::string_view::npos || !parse_decimal(args.rest, seq))
    return {HandshakeRequest::kNotHandshake, {}, 0};
  return {HandshakeRequest::kResume, args.word, seq};
}

}  // namespace

bool is_fatal(ErrorCode code) {
  return code != ErrorCode::kUnknownCommand && code != ErrorCode::kAlreadyReady;
}

HandshakeRequest decode_handshake(std::string_view payload) {
  Split parts = split_word(payload);
  if (parts.word == "FLUX_HELLO") return decode_hello(parts);
  if (parts.word == "FLUX_RESUME") return decode_resume(parts);
  return {HandshakeRequest::kNotHandshake, {}, 0};
}

ReadyRequest decode_ready(std::string_view payload) {
  if (!is_control(payload)) return {ReadyRequest::kData, {}, false};
  Split parts = split_word(payload);
  if (parts.word == "FLUX_PING") return {ReadyRequest::kPing, parts.rest, parts.has_rest};
  if (parts.word == "FLUX_BYE" && !parts.has_rest) return {ReadyRequest::kBye, {}, false};
  if (parts.word == "FLUX_HELLO" || parts.word == "FLUX_RESUME")
    return {ReadyRequest::kAlreadyReady, {}, false};
  return {ReadyRequest::kUnknownCommand, {}, false};
}

}  // namespace flux
