#include "bench/fluxbench/handshake.h"

#include <array>

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
