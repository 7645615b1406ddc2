#include "gateway/proxy_header.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace flux {
namespace {

constexpr std::byte kSignature[12] = {std::byte{0x0D}, std::byte{0x0A}, std::byte{0x0D},
                                      std::byte{0x0A}, std::byte{0x00}, std::byte{0x0D},
                                      std::byte{0x0A}, std::byte{0x51}, std::byte{0x55},
                                      std::byte{0x49}, std::byte{0x54}, std::byte{0x0A}};

constexpr uint8_t kVersion2 = 0x20;
constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;
constexpr uint8_t kTcpOverIpv4 = 0x11;
constexpr uint8_t kTcpOverIpv6 = 0x21;
constexpr size_t kIpv4Block = 12;
constexpr size_t kIpv6Block = 36;

ProxyHeader refused(ProxyHeaderError error) {
  ProxyHeader header;
  header.kind = ProxyHeader::kError;
  header.error = error;
  return header;
}

uint8_t at(std::span<const std::byte> bytes, size_t i) {
  return std::to_integer<uint8_t>(bytes[i]);
}

void read_ipv4(std::span<const std::byte> block, sockaddr_storage& out) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  std::memcpy(&v4.sin_addr, block.data(), 4);      // source address, network order
  std::memcpy(&v4.sin_port, block.data() + 8, 2);  // source port, network order
  std::memcpy(&out, &v4, sizeof v4);
}

void read_ipv6(std::span<const std::byte> block, sockaddr_storage& out) {
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  std::memcpy(&v6.sin6_addr, block.data(), 16);
  std::memcpy(&v6.sin6_port, block.data() + 32, 2);
  std::memcpy(&out, &v6, sizeof v6);
}

}  // namespace

ProxyHeader parse_proxy_header(std::span<const std::byte> bytes) {
  // Refuse as soon as a byte differs from the signature: a client speaking
  // Flux directly is told nothing and waits for nothing.
  const size_t seen = std::min(bytes.size(), sizeof kSignature);
  if (!std::equal(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(seen), kSignature))
    return refused(ProxyHeaderError::kMissing);
  if (bytes.size() < kProxyHeaderFixedSize) return {};
  const uint8_t version_command = at(bytes, 12);
  const uint8_t family = at(bytes, 13);
  const size_t length = (size_t{at(bytes, 14)} << 8) | at(bytes, 15);
  const uint8_t command = version_command & 0x0F;
  if ((version_command & 0xF0) != kVersion2 ||
      (command != kCommandLocal && command != kCommandProxy))
    return refused(ProxyHeaderError::kMalformed);
  if (kProxyHeaderFixedSize + length > kMaxProxyHeader)
    return refused(ProxyHeaderError::kOversized);
  const bool ipv4 = family == kTcpOverIpv4, ipv6 = family == kTcpOverIpv6;
  if (command == kCommandProxy && ((ipv4 && length < kIpv4Block) || (ipv6 && length < kIpv6Block)))
    return refused(ProxyHeaderError::kMalformed);
  if (bytes.size() < kProxyHeaderFixedSize + length) return {};

  ProxyHeader header;
  header.kind = ProxyHeader::kDone;
  header.size = kProxyHeaderFixedSize + length;
  if (command == kCommandProxy && (ipv4 || ipv6)) {
    const auto block = bytes.subspan(kProxyHeaderFixedSize, length);
    header.has_address = true;
    if (ipv4)
      read_ipv4(block, header.source);
    else
      read_ipv6(block, header.source);
  }
  return header;
}

}  // namespace flux
