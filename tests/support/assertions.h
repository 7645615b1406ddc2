#pragma once

// Checks shared by the integration tests, as AssertionResults so that a
// failure message says which step broke. Test thread only.

#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>

#include "support/test_client.h"

namespace flux::itest {

// A fresh client connects, handshakes and gets one frame echoed: proof that
// the gateway on `port` still serves new connections.
inline ::testing::AssertionResult serves_new_client(uint16_t port,
                                                    std::string_view payload = "new client") {
  TestClient client;
  if (auto connected = client.connect(port); !connected) return connected;
  if (auto ready = client.handshake(); !ready) return ready;
  if (auto sent = client.send_frame(payload); !sent) return sent;
  return client.expect_frame(payload);
}

}  // namespace flux::itest
