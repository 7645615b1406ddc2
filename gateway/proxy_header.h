#pragma once
// The PROXY protocol, version 2 (HAProxy's `send-proxy-v2`): a balancer in
// front of the gateway opens each connection with a binary header that
// carries the client's real address. With --proxy-protocol every accepted
// connection must start with one (docs/protocol.md, "Clusters").
//
//   12 bytes  signature  \r\n\r\n\0\r\nQUIT\n
//    1 byte   0x2C       version 2 (high nibble), command: 0 LOCAL, 1 PROXY
//    1 byte   family     0x11 TCP/IPv4, 0x21 TCP/IPv6 (others: no address)
//    2 bytes  length     of what follows, big-endian
//   length    addresses  IPv4: src 4, dst 4, src port 2, dst port 2
//                        IPv6: src 16, dst 16, src port 2, dst port 2
//                        then TLVs, which the gateway skips
//
// A LOCAL header (the balancer's own health check) or one for another
// family carries no client address: the connection's own peer stands.
//
// Parsing is incremental over whatever bytes have arrived, in place,
// without allocating: the reactor calls it on each read until it answers.
//
// Thread contract: pure functions.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/proxy_header_error.h"

namespace flux {

// Signature + fixed part, and the most a header may take with its TLVs
// (HAProxy sends a few; 1 KiB is far beyond them).
inline constexpr size_t kProxyHeaderFixedSize = 16;
inline constexpr size_t kMaxProxyHeader = 1024;

struct ProxyHeader {
  enum Kind : uint8_t { kNeedMore, kDone, kError } kind = kNeedMore;
  ProxyHeaderError error = ProxyHeaderError::kMalformed;  // kError only
  size_t size = 0;                                        // kDone: bytes to skip
  bool has_address = false;                               // kDone: PROXY over TCP/IPv4 or IPv6
  sockaddr_storage source{};                              // kDone with has_address: the client
};

// Looks at the first bytes of a connection.
ProxyHeader parse_proxy_header(std::span<const std::byte> bytes);

}  // namespace flux
