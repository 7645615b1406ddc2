// Cluster-facing behaviour of one node (docs/protocol.md, "Clusters"):
// --node-id in session ids, and --proxy-protocol (PROXY v2 headers as
// HAProxy's send-proxy-v2 writes them), over real loopback sockets.

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/metrics_scrape.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A PROXY v2 header for TCP over IPv4 from `client` (a.b.c.d):port to
// 127.0.0.1:9090, as HAProxy writes it.
std::string proxy_v2_ipv4(const uint8_t (&client)[4], uint16_t port) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.append("\x21\x11\x00\x0c", 4);
  for (uint8_t octet : client) h += static_cast<char>(octet);
  h.append("\x7f\x00\x00\x01", 4);
  h += static_cast<char>(port >> 8);
  h += static_cast<char>(port & 0xff);
  h.append("\x23\x82", 2);  // 9090
  return h;
}

TEST(NodeId, SessionIdsStartWithTheNodeInHex) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--node-id", "42", "--reactors", "2"}));
  for (int i = 0; i < 20; ++i) {
    TestClient client;
    ASSERT_TRUE(client.connect(gateway.port()));
    std::string id;
    ASSERT_TRUE(client.handshake(after(kPromptWait), &id));
    EXPECT_EQ(id.substr(0, 4), "002a") << id;
  }
}

TEST(ProxyProtocol, TheHeadersClientIsThePeerAndTheProtocolFollows) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--proxy-protocol"}));
  TestClient client;
  ASSERT_TRUE(client.connect(gateway.port()));
  // Header and HELLO in one write, as a balancer forwards them.
  ASSERT_TRUE(client.send_raw(proxy_v2_ipv4({192, 0, 2, 7}, 51000) + encode_frame("FLUX_HELLO")));
  auto ready = client.read_frame();
  ASSERT_TRUE(ready) << client.state();
  EXPECT_TRUE(is_fresh_ready(*ready)) << *ready;
  ASSERT_TRUE(client.send_frame("through the balancer"));
  ASSERT_TRUE(client.expect_frame("through the balancer"));

  auto listing = MetricsHttp(gateway.metrics_port()).get_json("/connections?limit=100");
  ASSERT_TRUE(listing && !listing->is_discarded());
  bool found = false;
  for (const json& row : (*listing)["connections"]) found |= row["peer"] == "192.0.2.7:51000";
  EXPECT_TRUE(found) << "the client's real address is the peer: " << listing->dump();

  // A header cut anywhere is waited for (until the handshake timeout).
  TestClient slow;
  ASSERT_TRUE(slow.connect(gateway.port()));
  const std::string header = proxy_v2_ipv4({198, 51, 100, 9}, 4242);
  ASSERT_TRUE(slow.send_raw(header.substr(0, 5)));
  ASSERT_TRUE(slow.send_raw(header.substr(5) + encode_frame("FLUX_HELLO")));
  auto slow_ready = slow.read_frame();
  ASSERT_TRUE(slow_ready) << slow.state();
  EXPECT_TRUE(is_fresh_ready(*slow_ready)) << *slow_ready;
}

TEST(ProxyProtocol, ADirectClientIsClosedWithoutReplyAndCounted) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--proxy-protocol"}));
  TestClient direct;
  ASSERT_TRUE(direct.connect(gateway.port()));
  ASSERT_TRUE(direct.send_frame("FLUX_HELLO"));
  EXPECT_TRUE(direct.expect_closed()) << "no reply, then closed: " << direct.state();

  TestClient malformed;
  ASSERT_TRUE(malformed.connect(gateway.port()));
  std::string bad = proxy_v2_ipv4({192, 0, 2, 8}, 1);
  bad[12] = '\x11';  // version 1 in a v2 header
  ASSERT_TRUE(malformed.send_raw(bad));
  EXPECT_TRUE(malformed.expect_closed()) << malformed.state();

  TestClient oversized;
  ASSERT_TRUE(oversized.connect(gateway.port()));
  ASSERT_TRUE(oversized.send_raw(std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff", 16)));
  EXPECT_TRUE(oversized.expect_closed()) << oversized.state();

  const uint16_t port = gateway.metrics_port();
  EXPECT_TRUE(metric_equals(port, "flux_proxy_header_errors_total", {{"reason", "missing"}}, 1,
                            after(seconds(5))));
  EXPECT_TRUE(metric_equals(port, "flux_proxy_header_errors_total", {{"reason", "malformed"}}, 1,
                            after(seconds(5))));
  EXPECT_TRUE(metric_equals(port, "flux_proxy_header_errors_total", {{"reason", "oversized"}}, 1,
                            after(seconds(5))));
}

TEST(ProxyProtocol, AHeaderThatNeverCompletesTimesOutWithoutReply) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--proxy-protocol", "--handshake-timeout", "300ms"}));
  TestClient stalled;
  ASSERT_TRUE(stalled.connect(gateway.port()));
  const auto start = Clock::now();
  ASSERT_TRUE(stalled.send_raw(std::string("\r\n\r\n\0\r", 6)));
  EXPECT_TRUE(stalled.expect_closed(after(seconds(5)))) << stalled.state();
  EXPECT_GE(ms_since(start), 250) << "closed before its handshake timeout";
  EXPECT_TRUE(metric_equals(gateway.metrics_port(), "flux_proxy_header_errors_total",
                            {{"reason", "timeout"}}, 1, after(seconds(5))));
}

}  // namespace
}  // namespace flux::itest
