// Many clients at once, and clients that vanish rudely: one reactor thread
// must keep every other connection served.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "support/assertions.h"
#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kClients = 1000;

// All 1,000 connections are open at the same time, and each phase (connect,
// hello, echo) is issued to every client before any answer is read, so the
// gateway really holds 1,000 connections with work in flight.
TEST(Concurrency, ThousandClientsHandshakeAndEcho) {
  // Each side of each connection is a descriptor, in this process and in the
  // gateway (which inherits this limit).
  if (raise_open_file_limit(2 * kClients + 100) < kClients + 100) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low for " << kClients << " clients";
  }
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  std::vector<TestClient> clients(kClients);
  const auto deadline = after(seconds(20));
  // Spread over four source addresses, as clients behind different hosts.
  for (size_t i = 0; i < kClients; ++i) {
    const std::string source = "127.0.0." + std::to_string(1 + i % 4);
    ASSERT_TRUE(clients[i].start_connect(gateway.port(), source));
  }
  for (size_t i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i].finish_connect(deadline)) << i;
  for (auto& c : clients) ASSERT_TRUE(c.send_frame("FLUX_HELLO", deadline));
  std::set<std::string> ids;
  for (size_t i = 0; i < kClients; ++i) {
    const auto reply = clients[i].read_frame(deadline);
    ASSERT_TRUE(reply) << "client " << i << ": " << clients[i].state();
    std::string id;
    ASSERT_TRUE(is_fresh_ready(*reply, &id)) << describe_payload(*reply);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), kClients) << "session ids repeated";
  for (size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i].send_frame(make_payload(i, 64 + i % 200), deadline));
  }
  for (size_t i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i].expect_frame(make_payload(i, 64 + i % 200), deadline)) << i;
  }
}

// A client that sends half a frame and then resets: the gateway drops that
// connection and nothing else.
TEST(Concurrency, ResetMidFrameLeavesOthersServed) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  TestClient bystander;
  ASSERT_TRUE(bystander.connect(gateway.port()));
  ASSERT_TRUE(bystander.handshake());
  TestClient rude;
  ASSERT_TRUE(rude.connect(gateway.port()));
  ASSERT_TRUE(rude.handshake());
  // The PONG proves the gateway read this write, half frame included (one
  // segment, TCP_NODELAY), so the reset lands on a half-assembled frame.
  ASSERT_TRUE(rude.send_raw(encode_frame("FLUX_PING x") + encode_header(100) + "only ten b"));
  ASSERT_TRUE(rude.expect_frame("FLUX_PONG x"));
  rude.reset();
  ASSERT_TRUE(bystander.send_frame("after the reset"));
  EXPECT_TRUE(bystander.expect_frame("after the reset"));
  EXPECT_TRUE(serves_new_client(gateway.port()));
  EXPECT_TRUE(gateway.running());
}

// A client that stops reading, lets the gateway queue output for it, then
// resets: the gateway's pending write fails with EPIPE/ECONNRESET, which must
// be handled (SIGPIPE ignored or MSG_NOSIGNAL), not kill the process.
TEST(Concurrency, ResetWithQueuedOutputDoesNotKillGateway) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--max-pending", "65536"}));
  TestClient rude;
  rude.set_buffer_sizes(4096, 0);  // fills fast: the gateway must queue
  ASSERT_TRUE(rude.connect(gateway.port()));
  ASSERT_TRUE(rude.handshake());
  // 8 MiB of echoes exceed a 4 KiB receive buffer plus the gateway's socket
  // send buffer (at most 4 MiB): the rest stays queued in the gateway, which
  // then stops reading, and this client stalls.
  const std::string burst = encode_frames(std::vector<std::string>(256, make_payload(1, 32768)));
  const size_t sent = rude.send_until_stalled(burst, milliseconds(300), after(seconds(5)));
  ASSERT_GT(sent, 256u * 1024) << "the gateway read too little to have queued output";
  rude.reset();
  EXPECT_TRUE(serves_new_client(gateway.port()));
  EXPECT_TRUE(gateway.running()) << "gateway died: " << gateway.status_text();
}

}  // namespace
}  // namespace flux::itest
