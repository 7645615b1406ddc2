#pragma once
// Drives one or more Reactors on the test's own thread, as the fuzzer does:
// each client is one end of an AF_UNIX socketpair, the other end is given to
// a reactor (serve_connected), and the loops are turned by hand (run_once)
// until what the test waits for has arrived, within a deadline.
//
// Shared by the reactor, connection and session hand-off unit tests: the
// options they start from, the clients, and the counts they check.

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/protocol_enums.h"
#include "gateway/options.h"
#include "gateway/reactor.h"

namespace flux::testing {

using namespace std::chrono_literals;

// Options for a reactor driven by hand: an ephemeral port (the listener is
// not what these tests exercise) and a 200 ms linger, so that a closing
// connection ends well within a test's deadline.
inline Options quick_options() {
  Options options;
  options.port = 0;
  options.linger = Millis{200};
  return options;
}

// Connections of `reactor` closed for `reason` so far.
inline uint64_t closed_count(const Reactor& reactor, CloseReason reason) {
  return reactor.metrics().connections.closed_total[static_cast<size_t>(reason)].get();
}

// Turns every reactor once (blocking in the first only when asked: the
// 100 ms tick bounds the wait).
inline void turn(std::initializer_list<Reactor*> reactors, bool block = false) {
  bool first = true;
  for (Reactor* reactor : reactors) {
    reactor->run_once(block && first);
    first = false;
  }
}

// Turns the reactors until `done()` holds or `limit` has passed. `done` is
// called several times: it must keep what it has found.
template <typename Done>
bool turn_until(std::initializer_list<Reactor*> reactors, Done done,
                std::chrono::milliseconds limit = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    turn(reactors, /*block=*/false);
    if (!done()) turn(reactors, /*block=*/true);
  }
  return true;
}

inline std::string frame(std::string_view payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  std::string out{char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
  out.append(payload);
  return out;
}

// One client of a reactor, on a socketpair.
class PairClient {
 public:
  explicit PairClient(Reactor& reactor) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0) {
      fd_ = Fd(pair[0]);
      reactor.serve_connected(Fd(pair[1]));
    }
  }

  bool valid() const { return fd_.get() >= 0; }
  void send_raw(std::string_view bytes) {
    (void)::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  void send(std::string_view payload) { send_raw(frame(payload)); }
  void close() { fd_.reset(); }
  void shut_write() { ::shutdown(fd_.get(), SHUT_WR); }

  // The next whole frame's payload, once the reactors have produced it.
  std::optional<std::string> receive(std::initializer_list<Reactor*> reactors,
                                     std::chrono::milliseconds limit = 3s) {
    std::optional<std::string> got;
    auto arrived = [&] {
      if (!got) got = take_frame();
      return got.has_value() || eof_;
    };
    turn_until(reactors, arrived, limit);
    return got;
  }
  // True once the server has closed (or half-closed) its side, every frame
  // before that having been received.
  bool sees_eof(std::initializer_list<Reactor*> reactors, std::chrono::milliseconds limit = 3s) {
    turn_until(
        reactors, [&] { return (pull(), eof_ && buffer_.empty()); }, limit);
    return eof_ && buffer_.empty();
  }

 private:
  void pull() {
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof_ = true;
      return;
    }
  }
  std::optional<std::string> take_frame() {
    pull();
    if (buffer_.size() < 4) return std::nullopt;
    auto byte = [&](size_t i) { return size_t(static_cast<unsigned char>(buffer_[i])); };
    const size_t n = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
    if (buffer_.size() < 4 + n) return std::nullopt;
    std::string payload = buffer_.substr(4, n);
    buffer_.erase(0, 4 + n);
    return payload;
  }

  Fd fd_;
  std::string buffer_;
  bool eof_ = false;
};

// "FLUX_READY <id> <seq>" -> id, or "" if it is not that.
inline std::string ready_session_id(const std::optional<std::string>& reply) {
  constexpr std::string_view kReady = "FLUX_READY ";
  if (!reply || reply->rfind(kReady, 0) != 0 || reply->size() < kReady.size() + 32) return {};
  return reply->substr(kReady.size(), 32);
}

}  // namespace flux::testing
