// parse_proxy_header: PROXY protocol v2 as HAProxy's send-proxy-v2 writes it,
// cut at every point, and every way a header can be wrong.

#include "gateway/proxy_header.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

namespace flux {
namespace {

const std::string kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string header(uint8_t version_command, uint8_t family, const std::string& block) {
  std::string h = kSignature;
  h += static_cast<char>(version_command);
  h += static_cast<char>(family);
  h += static_cast<char>(block.size() >> 8);
  h += static_cast<char>(block.size() & 0xff);
  h.append(block);
  return h;
}

// src 192.0.2.7:51000 -> dst 127.0.0.10:9090
std::string ipv4_block() {
  std::string b;
  for (int octet : {192, 0, 2, 7, 127, 0, 0, 10}) b += static_cast<char>(octet);
  for (int port : {51000, 9090}) {
    b += static_cast<char>(port >> 8);
    b += static_cast<char>(port & 0xff);
  }
  return b;
}

TEST(ProxyHeader, Ipv4ProxyGivesTheClientAddress) {
  const std::string h = header(0x21, 0x11, ipv4_block());
  ProxyHeader parsed = parse_proxy_header(as_bytes(h));
  ASSERT_EQ(parsed.kind, ProxyHeader::kDone);
  EXPECT_EQ(parsed.size, 28u);
  ASSERT_TRUE(parsed.has_address);
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&parsed.source);
  ASSERT_EQ(v4->sin_family, AF_INET);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
  EXPECT_STREQ(text, "192.0.2.7");
  EXPECT_EQ(ntohs(v4->sin_port), 51000);
}

TEST(ProxyHeader, Ipv6ProxyGivesTheClientAddress) {
  std::string block(36, '\0');
  block[15] = 1;  // ::1
  block[31] = 1;
  block[32] = static_cast<char>(0x12);
  block[33] = static_cast<char>(0x34);
  ProxyHeader parsed = parse_proxy_header(as_bytes(header(0x21, 0x21, block)));
  ASSERT_EQ(parsed.kind, ProxyHeader::kDone);
  ASSERT_TRUE(parsed.has_address);
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&parsed.source);
  EXPECT_EQ(v6->sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
  EXPECT_EQ(ntohs(v6->sin6_port), 0x1234);
}

TEST(ProxyHeader, TlvsAreSkippedAndFlowBytesAreNotTaken) {
  std::string block = ipv4_block();
  block.append(
      "\x04\x00\x03"
      "abc",
      6);  // a NOOP TLV
  const std::string h = header(0x21, 0x11, block);
  std::string stream = h;
  stream.append(
      "\0\0\0\x0a"
      "FLUX_HELLO",
      14);
  ProxyHeader parsed = parse_proxy_header(as_bytes(stream));
  ASSERT_EQ(parsed.kind, ProxyHeader::kDone);
  EXPECT_EQ(parsed.size, h.size()) << "the Flux bytes behind it are left for the protocol";
}

TEST(ProxyHeader, LocalAndUnspecifiedCarryNoAddress) {
  ProxyHeader local = parse_proxy_header(as_bytes(header(0x20, 0x00, "")));
  ASSERT_EQ(local.kind, ProxyHeader::kDone);
  EXPECT_FALSE(local.has_address);
  EXPECT_EQ(local.size, 16u);
  ProxyHeader unix_family = parse_proxy_header(as_bytes(header(0x21, 0x31, std::string(216, 'x'))));
  ASSERT_EQ(unix_family.kind, ProxyHeader::kDone);
  EXPECT_FALSE(unix_family.has_address);
}

TEST(ProxyHeader, EveryCutBeforeTheEndNeedsMore) {
  const std::string h = header(0x21, 0x11, ipv4_block());
  for (size_t cut = 0; cut < h.size(); ++cut)
    EXPECT_EQ(parse_proxy_header(as_bytes(h.substr(0, cut))).kind, ProxyHeader::kNeedMore) << cut;
}

TEST(ProxyHeader, ADirectClientIsMissingAtItsFirstByte) {
  const std::string flux_hello(
      "\0\0\0\x0a"
      "FLUX_HELLO",
      14);
  ProxyHeader parsed = parse_proxy_header(as_bytes(flux_hello.substr(0, 1)));
  EXPECT_EQ(parsed.kind, ProxyHeader::kError) << "0x00 is not 0x0D: no need to wait";
  EXPECT_EQ(parsed.error, ProxyHeaderError::kMissing);
  ProxyHeader v1 = parse_proxy_header(as_bytes(std::string("PROXY TCP4 1.2.3.4 ")));
  EXPECT_EQ(v1.error, ProxyHeaderError::kMissing) << "version 1 (text) is not accepted";
}

TEST(ProxyHeader, WrongVersionCommandOrShortAddressesAreMalformed) {
  EXPECT_EQ(parse_proxy_header(as_bytes(header(0x11, 0x11, ipv4_block()))).error,
            ProxyHeaderError::kMalformed);  // version 1 in a v2 header
  EXPECT_EQ(parse_proxy_header(as_bytes(header(0x22, 0x11, ipv4_block()))).error,
            ProxyHeaderError::kMalformed);  // command 2
  EXPECT_EQ(parse_proxy_header(as_bytes(header(0x21, 0x11, ipv4_block().substr(0, 11)))).error,
            ProxyHeaderError::kMalformed);  // IPv4 block too short
  EXPECT_EQ(parse_proxy_header(as_bytes(header(0x21, 0x21, std::string(35, '\0')))).error,
            ProxyHeaderError::kMalformed);  // IPv6 block too short
}

TEST(ProxyHeader, OversizedIsRefusedFromTheLengthAlone) {
  std::string h = kSignature;
  h.append("\x21\x11\xff\xff", 4);  // 65535 announced
  ProxyHeader parsed = parse_proxy_header(as_bytes(h));
  EXPECT_EQ(parsed.kind, ProxyHeader::kError);
  EXPECT_EQ(parsed.error, ProxyHeaderError::kOversized);
  EXPECT_EQ(
      parse_proxy_header(as_bytes(header(0x21, 0x11, std::string(kMaxProxyHeader - 16, 'x')))).kind,
      ProxyHeader::kDone)
      << "exactly the bound is accepted";
}

TEST(ProxyHeader, ReasonsAreDistinctLabels) {
  EXPECT_EQ(to_string(ProxyHeaderError::kMissing), "missing");
  EXPECT_EQ(to_string(ProxyHeaderError::kMalformed), "malformed");
  EXPECT_EQ(to_string(ProxyHeaderError::kOversized), "oversized");
  EXPECT_EQ(to_string(ProxyHeaderError::kTimeout), "timeout");
  EXPECT_EQ(kProxyHeaderErrorCount, static_cast<int>(ProxyHeaderError::kTimeout) + 1);
}

}  // namespace
}  // namespace flux
