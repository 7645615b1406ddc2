// Graceful shutdown (docs/protocol.md section 5): on SIGTERM or SIGINT the gateway
// stops accepting, tells every connection `FLUX_ERROR server-shutdown`,
// flushes, closes, and exits 0 within the linger bound.

#include <gtest/gtest.h>
#include <signal.h>

#include <ostream>
#include <string>

#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::seconds;

constexpr seconds kLinger{1};
// Process start-up to exit costs little; the margin is for a loaded machine.
constexpr seconds kExitMargin{3};

struct ShutdownSignal {
  int number;
  const char* name;
};

void PrintTo(const ShutdownSignal& s, std::ostream* os) {
  *os << s.name;
}

class ShutdownTest : public ::testing::TestWithParam<ShutdownSignal> {};

// Three connections in different situations:
//   polite  - READY, reads the error, sees EOF, closes its side;
//   waiting - still in HANDSHAKE (after a FLUX_INVALID, so surely accepted);
//   silent  - READY, reads nothing and never closes: the gateway may not
//             wait for it past --linger.
TEST_P(ShutdownTest, EveryClientIsToldThenProcessExitsZero) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--linger", "1s"}));
  TestClient polite;
  ASSERT_TRUE(polite.connect(gateway.port()));
  ASSERT_TRUE(polite.handshake());
  TestClient waiting;
  ASSERT_TRUE(waiting.connect(gateway.port()));
  ASSERT_TRUE(waiting.send_frame("FLUX_RESUME 0123456789abcdef0123456789abcdef 0"));
  ASSERT_TRUE(waiting.expect_frame("FLUX_INVALID session-unknown"));
  TestClient silent;
  ASSERT_TRUE(silent.connect(gateway.port()));
  ASSERT_TRUE(silent.handshake());

  const auto signalled = Clock::now();
  gateway.signal(GetParam().number);
  for (TestClient* client : {&polite, &waiting}) {
    ASSERT_TRUE(client->expect_frame("FLUX_ERROR server-shutdown"));
    EXPECT_TRUE(client->expect_closed());
    client->close();
  }
  const auto status = gateway.wait_exit(signalled + kLinger + kExitMargin);
  ASSERT_TRUE(status) << "still running " << ms_since(signalled) << " ms after " << GetParam().name
                      << " with --linger 1s";
  EXPECT_TRUE(status->success()) << status->to_string();
  // The silent client's error was delivered before the gateway gave up on it.
  EXPECT_TRUE(silent.expect_frame("FLUX_ERROR server-shutdown"));
  EXPECT_TRUE(silent.wait_closed());
}

INSTANTIATE_TEST_SUITE_P(Signals, ShutdownTest,
                         ::testing::Values(ShutdownSignal{SIGTERM, "SIGTERM"},
                                           ShutdownSignal{SIGINT, "SIGINT"}),
                         [](const auto& test) { return std::string(test.param.name); });

// With nobody connected there is nothing to linger for. A SIGTERM right after
// the listening line is what a supervisor sends to a just-started server; it
// is repeated because a start-up race (a helper thread not yet running when
// the signal arrives) loses only now and then.
TEST(Shutdown, FreshIdleGatewayExitsPromptly) {
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    GatewayProcess gateway;
    ASSERT_TRUE(gateway.start());  // default --linger 5s must not be waited out
    gateway.signal(SIGTERM);
    const auto status = gateway.wait_exit(after(seconds(2)));
    ASSERT_TRUE(status) << "an idle gateway took more than 2 s to exit on SIGTERM";
    ASSERT_TRUE(status->success()) << status->to_string();
  }
}

}  // namespace
}  // namespace flux::itest
