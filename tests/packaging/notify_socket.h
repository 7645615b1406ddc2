#pragma once
// NotifySocket: a stand-in for systemd's notification socket, for tests.
//
// An AF_UNIX datagram socket bound to a fresh directory under /tmp; point
// NOTIFY_SOCKET at path() and every sd_notify() datagram arrives here,
// stamped with the steady-clock time it was read. Header-only; used by the
// in-process notifier test and by the child-process gateway test.
//
// Thread contract: one thread.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flux::ptest {

using Clock = std::chrono::steady_clock;

struct Notification {
  Clock::time_point at;
  std::string text;  // "READY=1\nSTATUS=..."

  // True when one of its lines is exactly `assignment` ("WATCHDOG=1").
  bool has(std::string_view assignment) const {
    size_t start = 0;
    while (start <= text.size()) {
      const size_t end = std::min(text.find('\n', start), text.size());
      if (std::string_view(text).substr(start, end - start) == assignment) return true;
      start = end + 1;
    }
    return false;
  }
};

class NotifySocket {
 public:
  NotifySocket() {
    std::array<char, 32> dir{"/tmp/flux-notify-XXXXXX"};
    if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = dir.data();
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot bind the notify socket " + path_);
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }

  // The next datagram, or nullopt once `deadline` has passed without one.
  std::optional<Notification> receive(Clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return std::nullopt;
      std::array<char, 4096> buf{};
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) continue;
      return Notification{Clock::now(), std::string(buf.data(), static_cast<size_t>(n))};
    }
  }

  // Datagrams until the first carrying `assignment` (returned), or nullopt
  // at `deadline`. Every one read, that one included, is appended to `seen`.
  template <typename Seen>
  std::optional<Notification> receive_until(std::string_view assignment, Clock::time_point deadline,
                                            Seen& seen) {
    while (auto n = receive(deadline)) {
      seen.push_back(*n);
      if (n->has(assignment)) return n;
    }
    return std::nullopt;
  }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

}  // namespace flux::ptest
