// Output bounds under hostile clients (docs/reliability.md): the real
// gateway, real loopback sockets, every wait bounded by a deadline.
//
//   server-wide bound   40 clients push 64 KiB frames and never read, against
//                       --max-pending-total 16 MiB: the gateway's queued output
//                       stays within the bound, a reading client is served
//                       throughout, and once the writers read, nothing is lost
//   write deadline      a client that stops reading with output queued is
//                       closed as a slow consumer at --write-timeout, counted
//                       and logged; one that reads slowly but steadily is not
//   memory given back   after a flood, with every client gone and every
//                       session expired, the pools give their blocks back and
//                       RSS returns within 96 MiB of its level before

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/assertions.h"
#include "support/gateway_process.h"
#include "support/metrics_scrape.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr size_t kFrameBytes = 64 * 1024;

std::vector<std::string> payloads_for(size_t client, size_t frames) {
  std::vector<std::string> payloads;
  payloads.reserve(frames);
  for (size_t k = 0; k < frames; ++k)
    payloads.push_back(make_payload(client * frames + k, kFrameBytes));
  return payloads;
}

// Writers that never read: each pushes its stream round-robin until nobody
// gets a byte in for `quiet` (the gateway stopped reading all of them).
struct Flood {
  std::vector<TestClient> clients;
  std::vector<std::string> streams;
  std::vector<size_t> sent;

  ::testing::AssertionResult open(uint16_t port, size_t count, size_t frames_each) {
    clients.resize(count);
    for (size_t i = 0; i < count; ++i) {
      clients[i].set_buffer_sizes(64 * 1024, 64 * 1024);  // little hidden in this side's kernel
      if (auto ok = clients[i].connect(port); !ok) return ok << " (writer " << i << ")";
      if (auto ok = clients[i].handshake(); !ok) return ok << " (writer " << i << ")";
      streams.push_back(encode_frames(payloads_for(i, frames_each)));
    }
    sent.assign(count, 0);
    return ::testing::AssertionSuccess();
  }

  // Returns the bytes sent in all.
  uint64_t push_until_stalled(Clock::duration quiet, Deadline deadline) {
    auto last_progress = Clock::now();
    while (Clock::now() - last_progress < quiet && Clock::now() < deadline) {
      bool progress = false;
      for (size_t i = 0; i < clients.size(); ++i) {
        const size_t n = clients[i].send_available(std::string_view(streams[i]).substr(sent[i]));
        sent[i] += n;
        progress |= n > 0;
      }
      if (progress)
        last_progress = Clock::now();
      else
        std::this_thread::sleep_for(milliseconds(5));  // nobody can send: let the kernel breathe
    }
    uint64_t total = 0;
    for (size_t n : sent) total += n;
    return total;
  }
};

// One echo round trip of a reading client, timed.
::testing::AssertionResult probe_echo(TestClient& probe, uint64_t seed, long long& took_ms) {
  const std::string payload = make_payload(seed, 64);
  const auto start = Clock::now();
  if (auto sent = probe.send_frame(payload); !sent) return sent;
  auto echoed = probe.expect_frame(payload, after(seconds(10)));
  took_ms = ms_since(start);
  return echoed;
}

// 24 writers x 8 MiB pushed (the kernels' socket buffers take about 6 MiB of
// each); each alone stays under --max-pending (4 MiB), so without a
// server-wide bound the gateway would queue up to 96 MiB. With
// --max-pending-total 8 MiB it queues at most the hard limit (8 MiB + 1/8)
// plus one read's replies per writer, and a client that reads its echoes
// keeps being served while the writers are paused.
TEST(OutputBounds, NonReadersPauseAtTheServerWideBoundWhileAReaderIsServed) {
  constexpr size_t kWriters = 24;
  constexpr size_t kFrames = 128;  // 8 MiB each
  constexpr uint64_t kTotalBound = 8 * kMiB;
  GatewayProcess gateway;
  // Replay off: what the gateway holds for the writers is their queued output.
  // No write deadline: the writers read one after another at the end, and
  // the last would otherwise be closed as slow consumers while they wait.
  ASSERT_TRUE(gateway.start({"--max-pending-total", std::to_string(kTotalBound), "--replay-frames",
                             "0", "--write-timeout", "0"}));
  TestClient probe;
  ASSERT_TRUE(probe.connect(gateway.port()));
  ASSERT_TRUE(probe.handshake());
  Flood flood;
  ASSERT_TRUE(flood.open(gateway.port(), kWriters, kFrames));
  const auto baseline = resident_bytes(gateway.pid());
  ASSERT_TRUE(baseline);

  std::thread pusher;
  uint64_t pushed = 0;
  {
    // The probe runs while the writers push (the flood is live, not over).
    pusher =
        std::thread([&] { pushed = flood.push_until_stalled(seconds(1), after(seconds(60))); });
    long long worst_ms = 0;
    for (uint64_t i = 0; i < 20; ++i) {
      long long took = 0;
      EXPECT_TRUE(probe_echo(probe, 1000 + i, took))
          << "the reading client must be served during the flood";
      worst_ms = std::max(worst_ms, took);
    }
    pusher.join();
    std::cout << "probe: 20 echoes during the flood, slowest " << worst_ms << " ms\n";
  }
  auto during = scrape(gateway.metrics_port());
  ASSERT_TRUE(during);
  const double queued = metric(*during, "flux_output_queued_bytes");
  const auto peak = peak_resident_bytes(gateway.pid());
  ASSERT_TRUE(peak);
  const uint64_t growth = *peak > *baseline ? *peak - *baseline : 0;
  std::cout << pushed / kMiB << " MiB pushed by " << kWriters << " writers; gateway queues "
            << queued / double(kMiB) << " MiB; peak RSS grew by " << growth / kMiB << " MiB\n";
  // Hard limit (bound + 1/8) plus, per writer, the replies to the one read
  // that found the total over it (64 KiB per wakeup, one frame of slack).
  const double allowed = double(kTotalBound + kTotalBound / 8 + kWriters * 2 * (kFrameBytes + 4));
  EXPECT_LE(queued, allowed) << "queued output went past --max-pending-total";
  EXPECT_GT(queued, double(kTotalBound) / 2)
      << "the flood never reached the bound: the test tests nothing";
#ifdef FLUX_SANITIZED
  std::cout << "sanitized build: RSS bound not checked (ASan quarantine)\n";
#else
  // Queued frames point into 68 KiB read blocks; the pools hold them.
  EXPECT_LT(growth, 2 * kTotalBound + 48 * kMiB)
      << "the gateway buffered past its server-wide bound";
#endif
  EXPECT_TRUE(serves_new_client(gateway.port())) << "paused writers must not block the loop";

  // Now each writer reads: everything arrives, identical and in order.
  for (size_t i = 0; i < kWriters; ++i)
    ASSERT_TRUE(
        flood.clients[i].echo_stream(payloads_for(i, kFrames), after(seconds(60)), flood.sent[i]))
        << "writer " << i;
  EXPECT_TRUE(
      metric_equals(gateway.metrics_port(), "flux_output_queued_bytes", {}, 0, after(seconds(5))));
}

// A client fills its queue and stops reading: after --write-timeout with no
// progress the gateway closes it as a slow consumer (no error frame: it
// would not be read), counts it and logs it. A client that reads slowly but
// steadily makes progress and stays.
TEST(OutputBounds, SlowConsumerIsClosedAtTheWriteDeadline) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--write-timeout", "600ms", "--max-pending", "1048576"}));
  // 16 MiB: more than the kernel's socket buffers (up to 4 MiB of send
  // buffer on the gateway's side) can hide, so its own queue must block.
  const auto stream = encode_frames(payloads_for(0, 256));

  TestClient stalled, steady;
  for (TestClient* c : {&stalled, &steady}) {
    c->set_buffer_sizes(64 * 1024, 64 * 1024);
    ASSERT_TRUE(c->connect(gateway.port()));
    ASSERT_TRUE(c->handshake());
  }
  const size_t pushed = stalled.send_until_stalled(stream, milliseconds(500), after(seconds(20)));
  ASSERT_GT(pushed, size_t{1} << 20) << "the gateway never had output to block on";
  const auto stalled_at = Clock::now();

  // The steady client sends as much and reads 64 KiB every 100 ms: slower
  // than the gateway writes, but never 600 ms without progress.
  size_t steady_sent = steady.send_available(stream);
  const auto steady_until = after(seconds(3));
  while (Clock::now() < steady_until) {
    steady_sent += steady.send_available(std::string_view(stream).substr(steady_sent));
    steady.receive_available();
    while (steady.pop_frame()) {
    }
    std::this_thread::sleep_for(milliseconds(100));  // the pace of a slow reader, not a wait
  }
  EXPECT_FALSE(steady.peer_closed())
      << "a reader that makes progress is not a slow consumer: " << steady.state();

  ASSERT_TRUE(metric_equals(gateway.metrics_port(), "flux_connections_closed_total",
                            {{"reason", "slow-consumer"}}, 1, after(seconds(10))));
  std::cout << "slow consumer closed " << ms_since(stalled_at)
            << " ms after the client saw its own writes stall\n";
  // Its socket is really closed: what the kernel still held for it comes
  // out, then EOF (or a reset). Not before: reading is progress.
  EXPECT_TRUE(stalled.wait_closed(after(seconds(10)))) << stalled.state();
  EXPECT_NE(gateway.stderr_text().find("slow consumer"), std::string::npos)
      << "the close is logged:\n"
      << gateway.stderr_text();
  EXPECT_TRUE(serves_new_client(gateway.port()));
}

// 96 writers push 8 MiB each without reading (replay on, defaults but a
// 1 s resume window): the pools grow by hundreds of MiB. Then every writer
// resets; once their sessions have expired nothing needs those blocks, and
// the pools give them back gradually: free pool bytes fall to near zero and
// RSS returns within 96 MiB of its level before the flood, within 60 s.
TEST(OutputBounds, MemoryIsGivenBackAfterAFlood) {
  constexpr size_t kWriters = 96;
  constexpr size_t kFrames = 128;  // 8 MiB each
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--resume-window", "1s", "--write-timeout", "0"}));
  const auto before = resident_bytes(gateway.pid());
  ASSERT_TRUE(before);
  Flood flood;
  ASSERT_TRUE(flood.open(gateway.port(), kWriters, kFrames));
  const uint64_t pushed = flood.push_until_stalled(seconds(1), after(seconds(60)));
  const auto peak = resident_bytes(gateway.pid());
  ASSERT_TRUE(peak);
  auto during = scrape(gateway.metrics_port());
  ASSERT_TRUE(during);
  const double pooled = metric(*during, "flux_buffer_pool_in_use_bytes") +
                        metric(*during, "flux_buffer_pool_free_bytes");
  std::cout << pushed / kMiB << " MiB pushed; RSS " << *before / kMiB << " -> " << *peak / kMiB
            << " MiB, pools hold " << pooled / double(kMiB) << " MiB\n";
  ASSERT_GT(pooled, double(128 * kMiB))
      << "the flood did not grow the pools: the test tests nothing";

  const auto left_at = Clock::now();
  for (TestClient& writer : flood.clients) writer.reset();
  EXPECT_TRUE(metric_equals(gateway.metrics_port(), "flux_sessions", {}, 0, after(seconds(15))))
      << "the writers' sessions should have expired";
  // Allocations and releases are both counted; the free bytes drain.
  EXPECT_TRUE(metric_becomes(
      gateway.metrics_port(), "flux_buffer_pool_free_bytes", {},
      [](double v) { return v < double(16 * kMiB); }, after(seconds(60)), "< 16 MiB"));
  auto later = scrape(gateway.metrics_port());
  ASSERT_TRUE(later);
  EXPECT_GT(metric(*later, "flux_buffer_releases_total"), 0);
#ifdef FLUX_SANITIZED
  std::cout << "sanitized build: RSS not checked (ASan quarantine and shadow memory)\n";
#else
  const uint64_t target = *before + 96 * kMiB;
  std::optional<uint64_t> rss;
  do {
    rss = resident_bytes(gateway.pid());
    if (rss && *rss <= target) break;
    std::this_thread::sleep_for(milliseconds(250));  // sampling interval, as a monitor would
  } while (ms_since(left_at) < 60'000);
  ASSERT_TRUE(rss);
  std::cout << "RSS " << *rss / kMiB << " MiB " << ms_since(left_at)
            << " ms after the last writer left (before the flood: " << *before / kMiB << " MiB)\n";
  EXPECT_LE(*rss, target) << "RSS did not come back within 96 MiB of its pre-flood level in 60 s";
#endif
  EXPECT_TRUE(serves_new_client(gateway.port()));
}

}  // namespace
}  // namespace flux::itest
