// Listener on a real loopback socket: binds (port 0 = the kernel's pick),
// hands every accepted socket to its handler with the peer's address,
// counts nothing but what it should, and stops for good on close().

#include "gateway/listener.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "gateway/libevent_ptr.h"
#include "gateway/loop_clock.h"
#include "metrics/reactor_metrics.h"

namespace flux {
namespace {

using namespace std::chrono_literals;

class ListenerTest : public ::testing::Test {
 protected:
  // Connects a loopback client to the listener; -1 on failure.
  int connect_client() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(listener.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return -1;
    }
    clients_.push_back(fd);
    return fd;
  }
  // Turns the loop until `n` sockets were accepted (or 2 s passed).
  void accept_until(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (accepted_.size() < n && std::chrono::steady_clock::now() < deadline) {
      timeval tick{0, 10'000};
      event_base_loopexit(base_.get(), &tick);
      event_base_dispatch(base_.get());
    }
  }
  ~ListenerTest() override {
    for (int fd : clients_) ::close(fd);
  }

  EventBasePtr base_{event_base_new()};
  ReactorMetrics metrics_;
  LoopClock clock_{metrics_};
  std::vector<Fd> accepted_;
  std::vector<int> families_;
  std::vector<int> clients_;
  Listener listener{base_.get(), clock_, metrics_.connections,
                    [this](Fd fd, const sockaddr_storage& peer) {
                      families_.push_back(peer.ss_family);
                      accepted_.push_back(std::move(fd));
                    }};
};

TEST_F(ListenerTest, BindsAFreePortAndHandsOverEveryAcceptedSocket) {
  std::string error;
  ASSERT_TRUE(listener.open("127.0.0.1", 0, false, error)) << error;
  EXPECT_NE(listener.port(), 0);
  for (int i = 0; i < 3; ++i) ASSERT_GE(connect_client(), 0);
  accept_until(3);
  ASSERT_EQ(accepted_.size(), 3u);
  for (const Fd& fd : accepted_) EXPECT_GE(fd.get(), 0);
  for (int family : families_) EXPECT_EQ(family, AF_INET);
  EXPECT_EQ(metrics_.connections.accepted_total.get(), 3u);
  EXPECT_EQ(metrics_.connections.accept_errors_total.get(), 0u);
}

TEST_F(ListenerTest, RefusesAnAddressThatIsNotNumeric) {
  std::string error;
  EXPECT_FALSE(listener.open("not-an-address", 0, false, error));
  EXPECT_FALSE(error.empty());
}

TEST_F(ListenerTest, ClosedItAcceptsNoMore) {
  std::string error;
  ASSERT_TRUE(listener.open("127.0.0.1", 0, false, error)) << error;
  const uint16_t port = listener.port();
  listener.close();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
  EXPECT_TRUE(accepted_.empty());
}

}  // namespace
}  // namespace flux
