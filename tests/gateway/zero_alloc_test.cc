// The hot path allocates nothing in steady state: proven, not claimed.
//
// A real Reactor runs on its own thread in this process; clients over
// loopback echo 100,000 frames after a warm-up. Two independent witnesses:
//  1. the pools' own growth counters (block and frame-node allocations);
//  2. every malloc/calloc/realloc made on the reactor thread, counted by
//     interposing the allocator in this test binary (plain builds only:
//     the sanitizers own the allocator in theirs). This catches libevent,
//     libstdc++ and anything else, not just our pools.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "gateway/frame_parser.h"
#include "gateway/reactor.h"

#ifndef FLUX_SANITIZED
namespace {
thread_local bool t_count_allocations = false;
std::atomic<uint64_t> g_reactor_allocations{0};
void note_allocation() {
  if (t_count_allocations) g_reactor_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* malloc(size_t size) {
  note_allocation();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  note_allocation();
  return __libc_calloc(count, size);
}
void* realloc(void* p, size_t size) {
  note_allocation();
  return __libc_realloc(p, size);
}
}
constexpr bool kCountsMallocs = true;
#else
namespace {
thread_local bool t_count_allocations = false;
std::atomic<uint64_t> g_reactor_allocations{0};
}  // namespace
constexpr bool kCountsMallocs = false;
#endif

namespace flux {
namespace {

using namespace std::chrono_literals;

// Runs a Reactor on its own thread for the lifetime of the fixture.
class ReactorThread {
 public:
  explicit ReactorThread(const Options& options) {
    std::promise<uint16_t> bound;
    auto port = bound.get_future();
    thread_ = std::thread([&, options] {
      Reactor reactor(options);
      std::string error;
      if (!reactor.listen(error)) {
        bound.set_value(0);
        return;
      }
      reactor_ = &reactor;
      bound.set_value(reactor.port());
      t_count_allocations = true;
      reactor.run();
      t_count_allocations = false;
      reactor_ = nullptr;
    });
    port_ = port.get();
  }
  ~ReactorThread() {
    if (Reactor* r = reactor_.load()) r->request_shutdown();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  const ReactorMetrics& metrics() const { return reactor_.load()->metrics(); }

 private:
  std::thread thread_;
  std::atomic<Reactor*> reactor_{nullptr};
  uint16_t port_ = 0;
};

Fd connect_loopback(uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

std::string frame(std::string_view payload) {
  std::string out(kFrameHeaderSize, '\0');
  encode_frame_header(static_cast<uint32_t>(payload.size()),
                      reinterpret_cast<std::byte*>(out.data()));
  out.append(payload);
  return out;
}

// Reads exactly n bytes, failing the test after a 10 s deadline.
std::string read_exactly(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      ADD_FAILURE() << "timed out reading " << n << " bytes (got " << got << ")";
      return out.substr(0, got);
    }
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) {
      ADD_FAILURE() << "connection closed while reading";
      return out.substr(0, got);
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

void write_all(int fd, const std::string& bytes) {
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

class ZeroAllocTest : public ::testing::Test {
 protected:
  static constexpr int kClients = 8;
  static constexpr int kBatch = 32;  // frames in flight per client

  void SetUp() override {
    for (int i = 0; i < kClients; ++i) {
      clients_.push_back(connect_loopback(gateway_.port()));
      write_all(clients_.back().get(), frame("FLUX_HELLO"));
      std::string header = read_exactly(clients_.back().get(), 4);
      ASSERT_EQ(header.size(), 4u);
      read_exactly(clients_.back().get(), static_cast<uint8_t>(header[3]));
    }
    // 64-byte payloads, each client's batch coalesced into one write.
    for (int i = 0; i < kBatch; ++i) batch_ += frame(std::string(60, 'a' + char(i % 26)) + "0000");
  }

  // One round: every client sends a batch, then reads it back intact.
  void echo_round() {
    for (auto& c : clients_) write_all(c.get(), batch_);
    for (auto& c : clients_) ASSERT_EQ(read_exactly(c.get(), batch_.size()), batch_);
  }

  void echo(int frames) {
    for (int done = 0; done < frames; done += kClients * kBatch) {
      echo_round();
      if (HasFatalFailure()) return;
    }
  }

  Options options() {
    Options o;
    o.port = 0;
    return o;
  }

  ReactorThread gateway_{options()};
  std::vector<Fd> clients_;
  std::string batch_;
};

TEST_F(ZeroAllocTest, HundredThousandEchoesAfterWarmupAllocateNothing) {
  echo(20'000);  // warm-up: pools, libevent's change lists, vectors reach size
  ASSERT_FALSE(HasFatalFailure());
  const PoolMetrics& pool = gateway_.metrics().pool;
  const uint64_t blocks_before = pool.block_allocations_total.get();
  const uint64_t nodes_before = pool.frame_node_allocations_total.get();
  const uint64_t mallocs_before = g_reactor_allocations.load();
  const uint64_t frames_before = gateway_.metrics().traffic.frames_out_total.get();

  echo(100'000);
  ASSERT_FALSE(HasFatalFailure());

  const uint64_t frames = gateway_.metrics().traffic.frames_out_total.get() - frames_before;
  EXPECT_GE(frames, 100'000u) << "the echoes really went through the reactor";
  EXPECT_EQ(pool.block_allocations_total.get(), blocks_before) << "buffer pool grew";
  EXPECT_EQ(pool.frame_node_allocations_total.get(), nodes_before) << "frame-node pool grew";
  if (kCountsMallocs) {
    EXPECT_GT(mallocs_before, 0u) << "the malloc witness is not counting at all";
    EXPECT_EQ(g_reactor_allocations.load(), mallocs_before) << "malloc on the reactor thread";
  }
}

// The witness itself: a new connection does allocate (its events, its
// Connection), so a counter stuck at zero would be caught here.
#ifndef FLUX_SANITIZED
TEST_F(ZeroAllocTest, WitnessSeesTheAllocationsOfANewConnection) {
  echo(2'000);
  const uint64_t before = g_reactor_allocations.load();
  Fd extra = connect_loopback(gateway_.port());
  write_all(extra.get(), frame("FLUX_HELLO"));
  read_exactly(extra.get(), 4 + 45);
  EXPECT_GT(g_reactor_allocations.load(), before);
}
#endif

}  // namespace
}  // namespace flux
