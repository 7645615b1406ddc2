#include "bench/fluxbench/handshake.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <charconv>

#include "bench/fluxbench/payload.h"

namespace flux::bench {
namespace {

constexpr std::array<uint8_t, 14> kHello = {0,   0,   0,   10,  'F', 'L', 'U',
                                            'X', '_', 'H', 'E', 'L', 'L', 'O'};
constexpr std::array<uint8_t, 12> kBye = {0, 0, 0, 8, 'F', 'L', 'U', 'X', '_', 'B', 'Y', 'E'};
constexpr std::string_view kReadyPrefix = "FLUX_READY ";
constexpr size_t kSessionIdLength = 32;

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

}  // namespace

std::span<const uint8_t> hello_frame() noexcept {
  return kHello;
}
std::span<const uint8_t> bye_frame() noexcept {
  return kBye;
}

bool is_ready_reply(std::string_view payload) noexcept {
  if (payload.size() != kReadyPrefix.size() + kSessionIdLength + 2) return false;
  if (!payload.starts_with(kReadyPrefix) || !payload.ends_with(" 0")) return false;
  for (char c : payload.substr(kReadyPrefix.size(), kSessionIdLength)) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}

std::string_view ready_session_id(std::string_view payload) noexcept {
  return payload.substr(kReadyPrefix.size(), kSessionIdLength);
}

std::string resume_frame(std::string_view session_id, uint64_t last_seq) {
  const std::string text =
      "FLUX_RESUME " + std::string(session_id) + " " + std::to_string(last_seq);
  std::string frame(kFrameHeader, '\0');
  put_u32_be(reinterpret_cast<uint8_t*>(frame.data()), static_cast<uint32_t>(text.size()));
  return frame + text;
}

bool parse_resume_reply(std::string_view payload, std::string_view session_id,
                        uint64_t& seq) noexcept {
  if (!payload.starts_with(kReadyPrefix)) return false;
  payload.remove_prefix(kReadyPrefix.size());
  if (!payload.starts_with(session_id) || payload.size() < session_id.size() + 2 ||
      payload[session_id.size()] != ' ') {
    return false;
  }
  payload.remove_prefix(session_id.size() + 1);
  if (payload.size() > 1 && payload[0] == '0') return false;
  const auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), seq);
  return ec == std::errc{} && end == payload.data() + payload.size();
}

bool is_control(std::string_view payload) noexcept {
  return payload.starts_with("FLUX_");
}

std::string control_label(std::string_view payload) {
  size_t end = payload.find(' ');
  if (end != std::string_view::npos) end = payload.find(' ', end + 1);
  std::string label(payload.substr(0, std::min<size_t>(end, 48)));
  for (char& c : label) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return label.empty() ? "(empty frame)" : label;
}

}  // namespace flux::bench

namespace flux::bench {

std::string proxy_v2_header(int fd) {
  sockaddr_in local{}, peer{};
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
      local.sin_family != AF_INET || peer.sin_family != AF_INET) {
    return {};
  }
  // Signature, version 2 + PROXY, TCP over IPv4, 12 address bytes.
  std::string header("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
  // Addresses and ports are in network byte order on the wire, as in sockaddr_in.
  header.append(reinterpret_cast<const char*>(&local.sin_addr), 4);
  header.append(reinterpret_cast<const char*>(&peer.sin_addr), 4);
  header.append(reinterpret_cast<const char*>(&local.sin_port), 2);
  header.append(reinterpret_cast<const char*>(&peer.sin_port), 2);
  return header;
}

}  // namespace flux::bench
