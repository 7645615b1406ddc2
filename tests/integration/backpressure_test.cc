// Back-pressure (docs/protocol.md section 5): a client that sends without reading
// must be paused, not buffered without bound, and must lose nothing.
//
//   writer --50 MiB of 64 KiB frames--> gateway --echoes--> writer (not reading)
//
// Without back-pressure the gateway would read everything the writer sends
// and hold the echoes it cannot deliver: tens of MiB of heap. With it, the
// gateway stops reading once --max-pending (1 MiB) is queued, the kernel
// buffers fill, and the writer stalls; the gateway's memory stays near
// max-pending plus its read buffers.

#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "support/assertions.h"
#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::seconds;

constexpr size_t kFrameBytes = 64 * 1024;
constexpr size_t kFrames = 800;  // 50 MiB of payload
constexpr uint64_t kMiB = 1024 * 1024;

// A correct gateway grows by about max-pending (1 MiB) plus read buffers; one
// without back-pressure by most of the 50 MiB minus what the kernel buffers
// hold (a few MiB). 24 MiB separates the two with room on both sides.
constexpr uint64_t kMaxGrowth = 24 * kMiB;

TEST(Backpressure, SilentReaderIsPausedThenReceivesEverythingInOrder) {
  GatewayProcess gateway;
  // --write-timeout 0: on a loaded machine the silent phase may outlast the
  // default 10 s slow-consumer deadline (output_bounds_test covers that).
  ASSERT_TRUE(gateway.start({"--max-pending", "1048576", "--write-timeout", "0"}));
  TestClient writer;
  // A small receive buffer keeps the echoes from hiding in this side's kernel.
  writer.set_buffer_sizes(64 * 1024, 0);
  ASSERT_TRUE(writer.connect(gateway.port()));
  ASSERT_TRUE(writer.handshake());
  std::vector<std::string> payloads;
  for (uint64_t i = 0; i < kFrames; ++i) payloads.push_back(make_payload(i, kFrameBytes));
  const std::string stream = encode_frames(payloads);

  const auto baseline = resident_bytes(gateway.pid());
  ASSERT_TRUE(baseline);
  // Send without reading until the gateway stops taking bytes for a second.
  const size_t sent = writer.send_until_stalled(stream, seconds(1), after(seconds(30)));
  // The paused connection does not block the loop for anyone else.
  EXPECT_TRUE(serves_new_client(gateway.port()));
  const auto peak = peak_resident_bytes(gateway.pid());
  ASSERT_TRUE(peak);
  const uint64_t growth = *peak > *baseline ? *peak - *baseline : 0;
  std::cout << "writer stalled after " << sent / kMiB << " of " << stream.size() / kMiB
            << " MiB; gateway peak RSS grew by " << growth / kMiB << " MiB\n";
#ifdef FLUX_SANITIZED
  // ASan keeps freed memory in quarantine: RSS measures churn, not live data.
  std::cout << "sanitized build: RSS bound not checked\n";
#else
  EXPECT_LT(growth, kMaxGrowth) << "gateway buffered a non-reading client without bound";
#endif

  // Now read: every echo arrives, identical and in order, while the rest of
  // the stream is sent.
  EXPECT_TRUE(writer.echo_stream(payloads, after(seconds(60)), sent));
}

}  // namespace
}  // namespace flux::itest
